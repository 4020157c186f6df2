package b24sim

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// mAppInfo is app.info (fields after CRestProvider::appInfo).
func mAppInfo(c *call) (any, *page, *apiError) {
	r := newPHPArray()
	r.Set("ID", 7)
	code := c.s.opts.ClientID
	if code == "" {
		code = "local.sandbox"
	}
	r.Set("CODE", code)
	r.Set("VERSION", 1)
	r.Set("STATUS", c.p.status)
	r.Set("INSTALLED", true)
	r.Set("PAYMENT_EXPIRED", map[bool]string{true: "Y", false: "N"}[c.p.paymentRequired])
	r.Set("DAYS", nil)
	r.Set("LANGUAGE_ID", c.p.lang)
	r.Set("LICENSE", c.p.lang+"_project")
	r.Set("LICENSE_TYPE", "project")
	r.Set("LICENSE_FAMILY", "project")
	return r, nil, nil
}

func mScope(c *call) (any, *page, *apiError) {
	return strings.FieldsFunc(c.scope, func(r rune) bool { return r == ',' || r == ' ' }), nil, nil
}

// eventScope tells which scope makes an event bindable; "" is global.
// event.bind answers ERROR_EVENT_NOT_FOUND for events outside the token's
// scopes, as Bitrix24 only searches the scopes the app has.
func eventScope(event string) (string, bool) {
	switch event {
	case "ONAPPINSTALL", "ONAPPUNINSTALL", "ONAPPUPDATE", "ONAPPPAYMENT", "ONAPPTEST", "ONAPPMETHODCONFIRM", "ONSUBSCRIPTIONRENEW", "ONOFFLINEEVENT":
		return "", true
	case "ONIMCONNECTORMESSAGEADD", "ONIMCONNECTORMESSAGEUPDATE", "ONIMCONNECTORMESSAGEDELETE",
		"ONIMCONNECTORDIALOGSTART", "ONIMCONNECTORDIALOGFINISH", "ONIMCONNECTORLINEDELETE", "ONIMCONNECTORSTATUSDELETE":
		return "imconnector", true
	case "ONOPENLINEMESSAGEADD", "ONOPENLINEMESSAGEDELETE", "ONOPENLINEMESSAGEUPDATE", "ONSESSIONSTART", "ONSESSIONFINISH":
		return "imopenlines", true
	case "ONUSERADD":
		return "user", true
	}
	if strings.HasPrefix(event, "ONCRM") {
		return "crm", true
	}
	return "", false
}

func validHandler(h string) bool {
	u, err := url.Parse(h)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// mEventBind follows Bitrix\Rest\Api\Event::eventBind.
func mEventBind(c *call) (any, *page, *apiError) {
	event := strings.ToUpper(strings.TrimSpace(paramStr(c.params, "EVENT")))
	eventType := strings.ToLower(paramStr(c.params, "EVENT_TYPE"))
	handler := strings.TrimSpace(paramStr(c.params, "HANDLER"))
	authType := intval(param(c.params, "AUTH_TYPE"))
	if event == "" {
		return nil, nil, errArgumentNull("EVENT")
	}
	switch eventType {
	case "":
		eventType = "online"
	case "online", "offline":
	default:
		return nil, nil, errArgument("Value must be one of {online|offline}")
	}
	offline := eventType == "offline"
	if offline {
		handler, authType = "", 0
	} else {
		if handler == "" {
			return nil, nil, errArgumentNull("HANDLER")
		}
		if !validHandler(handler) {
			return nil, nil, errArgument("Handler URL is not valid: " + handler)
		}
	}
	scope, known := eventScope(event)
	if !known || (scope != "" && !hasScope(c.scope, scope)) {
		return nil, nil, newAPIError(400, "ERROR_EVENT_NOT_FOUND", "Event not found")
	}
	for _, b := range c.p.events {
		if b.Event == event && b.Handler == handler && b.AuthType == authType && b.Offline == offline {
			return nil, nil, newAPIError(400, "ERROR_HANDLER_ALREADY_EXIST", "Handler already exists!")
		}
	}
	c.p.seq.eventHandler++
	c.p.events = append(c.p.events, &EventBinding{ID: c.p.seq.eventHandler, Event: event, Handler: handler, AuthType: authType, Offline: offline})
	return true, nil, nil
}

func mEventGet(c *call) (any, *page, *apiError) {
	out := make([]any, 0, len(c.p.events))
	for _, b := range c.p.events {
		r := newPHPArray()
		r.Set("event", b.Event)
		if b.Offline {
			r.Set("connector_id", "")
			r.Set("offline", 1)
		} else {
			r.Set("handler", b.Handler)
			r.Set("auth_type", strconv.Itoa(b.AuthType))
			r.Set("offline", 0)
		}
		out = append(out, r)
	}
	return out, nil, nil
}

func mEventUnbind(c *call) (any, *page, *apiError) {
	event := strings.ToUpper(strings.TrimSpace(paramStr(c.params, "EVENT")))
	handler := paramStr(c.params, "HANDLER")
	offline := strings.EqualFold(paramStr(c.params, "EVENT_TYPE"), "offline")
	if event == "" {
		return nil, nil, errArgumentNull("EVENT")
	}
	if !offline && handler == "" {
		return nil, nil, errArgumentNull("HANDLER")
	}
	authRaw, hasAuth := c.params.lookupCI("AUTH_TYPE")
	n := 0
	c.p.events = slices.DeleteFunc(c.p.events, func(b *EventBinding) bool {
		match := b.Event == event && b.Offline == offline && (offline || b.Handler == handler) &&
			(!hasAuth || b.AuthType == intval(authRaw))
		if match {
			n++
		}
		return match
	})
	return map[string]int{"count": n}, nil, nil
}

// Events returns the event.bind registrations.
func (p *Portal) Events() []EventBinding {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	out := make([]EventBinding, 0, len(p.events))
	for _, b := range p.events {
		out = append(out, *b)
	}
	return out
}

// PlacementBinding is one placement.bind registration.
type PlacementBinding struct {
	ID          int
	Placement   string
	Handler     string
	Title       string
	Description string
	GroupName   string
	UserID      int
	Options     map[string]any
	LangAll     map[string]any
}

// Placements returns the placement.bind registrations.
func (p *Portal) Placements() []PlacementBinding {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	out := make([]PlacementBinding, 0, len(p.placements))
	for _, b := range p.placements {
		out = append(out, *b)
	}
	return out
}

var placementCodeRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// mPlacementBind follows Bitrix\Rest\Api\Placement::bind. Any well-formed
// code is accepted except DEFAULT and SETTING_CONNECTOR, which Bitrix24
// manages itself (the latter through imconnector.register).
func mPlacementBind(c *call) (any, *page, *apiError) {
	placement := strings.ToUpper(strings.TrimSpace(paramStr(c.params, "PLACEMENT")))
	handler := strings.TrimSpace(paramStr(c.params, "HANDLER"))
	switch {
	case placement == "":
		return nil, nil, errArgumentNull("PLACEMENT")
	case placement == "DEFAULT":
		return nil, nil, errArgument("Wrong value")
	case handler == "":
		return nil, nil, errArgumentNull("HANDLER")
	case !validHandler(handler):
		return nil, nil, errArgument("Handler URL is not valid: " + handler)
	case placement == "SETTING_CONNECTOR" || !placementCodeRe.MatchString(placement):
		return nil, nil, newAPIError(400, "ERROR_PLACEMENT_NOT_FOUND", "Placement not found")
	}
	userID := intval(param(c.params, "USER_ID"))
	for _, b := range c.p.placements {
		if b.Placement == placement && b.Handler == handler && b.UserID == userID {
			return nil, nil, errCore("Unable to set placement handler: Handler already binded")
		}
	}
	c.p.seq.placement++
	b := &PlacementBinding{
		ID: c.p.seq.placement, Placement: placement, Handler: handler, UserID: userID,
		Title: paramStr(c.params, "TITLE"), Description: paramStr(c.params, "DESCRIPTION"), GroupName: paramStr(c.params, "GROUP_NAME"),
	}
	if o := asArray(param(c.params, "OPTIONS")); o != nil {
		b.Options = plainParams(o)
	}
	if l := asArray(param(c.params, "LANG_ALL")); l != nil {
		b.LangAll = plainParams(l)
	}
	c.p.placements = append(c.p.placements, b)
	return true, nil, nil
}

func mPlacementGet(c *call) (any, *page, *apiError) {
	out := make([]any, 0, len(c.p.placements))
	for _, b := range c.p.placements {
		r := newPHPArray()
		r.Set("placement", b.Placement)
		r.Set("userId", b.UserID)
		r.Set("handler", b.Handler)
		if b.Options != nil {
			r.Set("options", b.Options)
		} else {
			r.Set("options", newPHPArray())
		}
		r.Set("title", b.Title)
		r.Set("description", b.Description)
		lang := newPHPArray()
		if b.LangAll != nil {
			lang = asArray(asPHP(b.LangAll))
		} else if b.Title != "" || b.Description != "" || b.GroupName != "" {
			l := newPHPArray()
			l.Set("TITLE", b.Title)
			l.Set("DESCRIPTION", b.Description)
			l.Set("GROUP_NAME", b.GroupName)
			lang.Set(c.p.lang, l)
		}
		r.Set("langAll", lang)
		out = append(out, r)
	}
	return out, nil, nil
}

// mPlacementUnbind mirrors Placement::unbind including its quirk of
// counting every removed handler twice.
func mPlacementUnbind(c *call) (any, *page, *apiError) {
	placement := strings.ToUpper(strings.TrimSpace(paramStr(c.params, "PLACEMENT")))
	if placement == "" {
		return nil, nil, errArgumentNull("PLACEMENT")
	}
	handler := paramStr(c.params, "HANDLER")
	userRaw, hasUser := c.params.lookupCI("USER_ID")
	n := 0
	c.p.placements = slices.DeleteFunc(c.p.placements, func(b *PlacementBinding) bool {
		match := b.Placement == placement && (handler == "" || b.Handler == handler) && (!hasUser || b.UserID == intval(userRaw))
		if match {
			n += 2
		}
		return match
	})
	return map[string]int{"count": n}, nil, nil
}

// userRow renders a user like user.get does.
func (p *Portal) userRow(u User) map[string]any {
	depts := u.Departments
	if depts == nil {
		depts = []int{}
	}
	ut := u.UserType
	if ut == "" {
		ut = "employee"
	}
	return map[string]any{
		"ID": strconv.Itoa(u.ID), "ACTIVE": !u.Inactive, "NAME": u.Name, "LAST_NAME": u.LastName,
		"SECOND_NAME": u.SecondName, "EMAIL": u.Email, "LAST_LOGIN": "2025-12-30T09:01:55+03:00",
		"DATE_REGISTER": "2024-07-15T00:00:00+03:00", "TIME_ZONE": "",
		"IS_ONLINE": map[bool]string{true: "Y", false: "N"}[u.Online], "PERSONAL_GENDER": u.Gender,
		"PERSONAL_MOBILE": u.PersonalMobile, "WORK_PHONE": u.WorkPhone, "WORK_POSITION": u.WorkPosition,
		"UF_EMPLOYMENT_DATE": "", "UF_DEPARTMENT": depts, "USER_TYPE": ut,
	}
}

func userEntity(u User) Entity {
	depts := make([]any, 0, len(u.Departments))
	for _, d := range u.Departments {
		depts = append(depts, strconv.Itoa(d))
	}
	ut := u.UserType
	if ut == "" {
		ut = "employee"
	}
	return Entity{
		"ID": strconv.Itoa(u.ID), "ACTIVE": map[bool]string{true: "Y", false: "N"}[!u.Inactive],
		"NAME": u.Name, "LAST_NAME": u.LastName, "EMAIL": u.Email, "WORK_POSITION": u.WorkPosition,
		"PERSONAL_MOBILE": u.PersonalMobile, "USER_TYPE": ut, "UF_DEPARTMENT": depts,
		"IS_ONLINE": map[bool]string{true: "Y", false: "N"}[u.Online],
	}
}

// mUserCurrent is user.current: the token's user (a token identifies both
// the portal and the user). Like the real method it has no admin flag; see
// user.admin.
func mUserCurrent(c *call) (any, *page, *apiError) {
	u, ok := c.p.user(c.userID)
	if !ok {
		u = User{ID: c.userID}
	}
	return c.p.userRow(u), nil, nil
}

// mUserAdmin is user.admin: whether the token's user is a portal
// administrator (PortalOptions.AdminUserID). It needs no scope.
func mUserAdmin(c *call) (any, *page, *apiError) {
	return c.userID == c.p.adminID, nil, nil
}

// mUserGet is user.get: filter in FILTER or as top-level keys, sort/order,
// pages of 50 with total.
func mUserGet(c *call) (any, *page, *apiError) {
	filter := asArray(param(c.params, "FILTER"))
	if filter == nil {
		filter = newPHPArray()
		for _, k := range c.params.Keys() {
			switch strings.ToUpper(k) {
			case "SORT", "ORDER", "START", "ADMIN_MODE", "FILTER":
				continue
			}
			v, _ := c.params.Get(k)
			filter.Set(strings.ToUpper(k), v)
		}
	}
	// ACTIVE arrives as true/"Y"/"true"/1; compare as Y/N.
	for _, k := range filter.Keys() {
		if strings.TrimLeft(strings.ToUpper(k), "=!<>%@") == "ACTIVE" {
			v, _ := filter.Get(k)
			filter.Set(k, map[bool]string{true: "Y", false: "N"}[yesNo(v)])
		}
	}
	var rows []Entity
	byID := map[string]User{}
	for _, u := range c.p.users {
		e := userEntity(u)
		if matchFilter(e, filter) {
			rows = append(rows, e)
			byID[e.Field("ID")] = u
		}
	}
	sortField := strings.ToUpper(paramStr(c.params, "sort"))
	if sortField == "" {
		sortField = "ID"
	}
	dir := paramStr(c.params, "order")
	if dir == "" {
		dir = "ASC"
	}
	sortRows(rows, phpListKV(sortField, dir))
	from, to, pg := listPage(c.params, len(rows))
	out := make([]any, 0, to-from)
	for _, r := range rows[from:to] {
		out = append(out, c.p.userRow(byID[r.Field("ID")]))
	}
	return out, pg, nil
}

func mDepartmentGet(c *call) (any, *page, *apiError) {
	filter := newPHPArray()
	for _, k := range c.params.Keys() {
		switch strings.ToUpper(k) {
		case "ID", "NAME", "SORT", "PARENT", "UF_HEAD":
			v, _ := c.params.Get(k)
			filter.Set(strings.ToUpper(k), v)
		}
	}
	var rows []Entity
	byID := map[string]Department{}
	for _, d := range c.p.departments {
		e := Entity{"ID": strconv.Itoa(d.ID), "NAME": d.Name, "SORT": strconv.Itoa(d.Sort), "PARENT": strconv.Itoa(d.Parent), "UF_HEAD": strconv.Itoa(d.Head)}
		if d.Parent == 0 {
			e["PARENT"] = ""
		}
		if matchFilter(e, filter) {
			rows = append(rows, e)
			byID[e.Field("ID")] = d
		}
	}
	sortField := strings.ToUpper(paramStr(c.params, "sort"))
	if sortField == "" {
		sortField = "ID"
	}
	dir := paramStr(c.params, "order")
	if dir == "" {
		dir = "ASC"
	}
	sortRows(rows, phpListKV(sortField, dir))
	from, to, pg := listPage(c.params, len(rows))
	out := make([]any, 0, to-from)
	for _, r := range rows[from:to] {
		d := byID[r.Field("ID")]
		row := newPHPArray()
		row.Set("ID", strconv.Itoa(d.ID))
		row.Set("NAME", d.Name)
		row.Set("SORT", d.Sort)
		if d.Parent != 0 {
			row.Set("PARENT", strconv.Itoa(d.Parent))
		}
		if d.Head != 0 {
			row.Set("UF_HEAD", strconv.Itoa(d.Head))
		}
		out = append(out, row)
	}
	return out, pg, nil
}

// Notification is an im.notify.system.add / im.notify.personal.add call.
type Notification struct {
	ID         int
	Type       string // "system" or "personal"
	UserID     int
	Message    string
	MessageOut string
	Tag        string
	SubTag     string
	AuthorID   int
	// Replaced is set when a later notification with the same Tag replaced
	// this one, as Bitrix24 does to de-duplicate.
	Replaced bool
	Time     time.Time
}

// Notifications returns every notification sent, oldest first.
func (p *Portal) Notifications() []Notification {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return slices.Clone(p.notifies)
}

func mNotify(c *call) (any, *page, *apiError) {
	userID := intval(param(c.params, "USER_ID"))
	msg := paramStr(c.params, "MESSAGE")
	if userID <= 0 {
		return nil, nil, newAPIError(400, "USER_ID_EMPTY", "User ID can't be empty")
	}
	if msg == "" {
		return nil, nil, newAPIError(400, "MESSAGE_EMPTY", "Message can't be empty")
	}
	typ := "system"
	if strings.HasSuffix(c.method, "personal.add") {
		typ = "personal"
	}
	tag := paramStr(c.params, "TAG")
	if tag != "" {
		for i := range c.p.notifies {
			if c.p.notifies[i].Tag == tag && c.p.notifies[i].UserID == userID {
				c.p.notifies[i].Replaced = true
			}
		}
	}
	c.p.seq.notify++
	c.p.notifies = append(c.p.notifies, Notification{
		ID: c.p.seq.notify, Type: typ, UserID: userID, Message: msg, MessageOut: paramStr(c.params, "MESSAGE_OUT"),
		Tag: tag, SubTag: paramStr(c.params, "SUB_TAG"), AuthorID: c.userID, Time: c.now,
	})
	return c.p.seq.notify, nil, nil
}

// ChatMessage is an im.message.add call.
type ChatMessage struct {
	ID       int
	DialogID string // "chat123" or a user id
	Message  string
	System   bool
	AuthorID int
	Time     time.Time
}

// ChatMessages returns the im.message.add messages, oldest first.
func (p *Portal) ChatMessages() []ChatMessage {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return slices.Clone(p.chatMsgs)
}

func mIMMessageAdd(c *call) (any, *page, *apiError) {
	dialog := paramStr(c.params, "DIALOG_ID")
	msg := paramStr(c.params, "MESSAGE")
	if dialog == "" {
		return nil, nil, newAPIError(400, "DIALOG_ID_EMPTY", "Dialog ID can't be empty")
	}
	if msg == "" && param(c.params, "ATTACH") == nil {
		return nil, nil, newAPIError(400, "MESSAGE_EMPTY", "Message can't be empty")
	}
	c.p.seq.chatMsg++
	c.p.chatMsgs = append(c.p.chatMsgs, ChatMessage{
		ID: c.p.seq.chatMsg, DialogID: dialog, Message: msg, System: yesNo(param(c.params, "SYSTEM")), AuthorID: c.userID, Time: c.now,
	})
	return c.p.seq.chatMsg, nil, nil
}
