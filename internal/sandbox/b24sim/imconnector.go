package b24sim

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// connectorReg is an imconnector.register registration.
type connectorReg struct {
	id, name         string
	placementHandler string
	chatGroup        bool
	needSignature    bool
	options          map[string]any
}

// Connector is the inspection view of a registered connector.
type Connector struct {
	ID               string
	Name             string
	PlacementHandler string
	ChatGroup        bool
	NeedSignature    bool
	// Params are all register parameters as sent (ICON, flags, ...).
	Params map[string]any
}

type connLineKey struct {
	connector string
	line      int
}

type connStatus struct {
	active     bool
	configured bool // connector.data.set received
	err        bool
	data       map[string]any
}

// ConnectorStatus is what imconnector.status would report, plus the DATA
// of connector.data.set.
type ConnectorStatus struct {
	Active     bool
	Configured bool
	Error      bool
	Status     bool
	Data       map[string]any
}

// builtinConnectors are part of imconnector.list on every portal.
var builtinConnectors = [][2]string{
	{"livechat", "Live chat"},
	{"telegrambot", "Telegram"},
	{"network", "Bitrix24.Network"},
	{"viber", "Viber"},
}

func (p *Portal) connectorLocked(id string) *connectorReg {
	id = strings.ToLower(id)
	for _, c := range p.connectors {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (p *Portal) statusLocked(connector string, line int) *connStatus {
	k := connLineKey{strings.ToLower(connector), line}
	st, ok := p.conn[k]
	if !ok {
		st = &connStatus{}
		p.conn[k] = st
	}
	return st
}

// Connectors returns the registered connectors.
func (p *Portal) Connectors() []Connector {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	out := make([]Connector, 0, len(p.connectors))
	for _, c := range p.connectors {
		out = append(out, Connector{ID: c.id, Name: c.name, PlacementHandler: c.placementHandler, ChatGroup: c.chatGroup, NeedSignature: c.needSignature, Params: cloneMap(c.options)})
	}
	return out
}

// ConnectorStatus reports the connector's state on a line.
func (p *Portal) ConnectorStatus(connector string, line int) ConnectorStatus {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	st, ok := p.conn[connLineKey{strings.ToLower(connector), line}]
	if !ok {
		return ConnectorStatus{}
	}
	conf := st.active && st.configured
	return ConnectorStatus{Active: st.active, Configured: conf, Error: st.err, Status: conf && !st.err, Data: cloneMap(st.data)}
}

// registerFailure is imconnector.register's soft failure: HTTP 200 with
// result.result=false (contract §4.2).
func registerFailure(code, desc string) (any, *page, *apiError) {
	r := newPHPArray()
	r.Set("result", false)
	r.Set("error", code)
	r.Set("error_description", desc)
	return r, nil, nil
}

func nestedTrue() any {
	r := newPHPArray()
	r.Set("result", true)
	return r
}

func mConnectorRegister(c *call) (any, *page, *apiError) {
	id := strings.ToLower(strings.TrimSpace(paramStr(c.params, "ID")))
	switch {
	case id == "":
		return registerFailure("CONNECTOR_ID_REQUIRED", "The connector ID is not specified")
	case strings.Contains(id, "."):
		return registerFailure("APPLICATION_REGISTRATION_ERROR_POINT", "The connector ID must not contain a dot")
	}
	name := strings.TrimSpace(paramStr(c.params, "NAME"))
	if name == "" {
		return registerFailure("NAME_REQUIRED", "The connector name is not specified")
	}
	if childStr(param(c.params, "ICON"), "DATA_IMAGE") == "" {
		return registerFailure("ICON_REQUIRED", "The connector icon is not specified")
	}
	handler := strings.TrimSpace(paramStr(c.params, "PLACEMENT_HANDLER"))
	if handler == "" {
		return registerFailure("NO_PLACEMENT_HANDLER", "The placement handler is not specified")
	}
	flag := func(name string, def bool) bool {
		v, ok := c.params.lookupCI(name)
		if s, isStr := v.(string); !ok || v == nil || isStr && s == "" {
			return def
		}
		return yesNo(v)
	}
	reg := c.p.connectorLocked(id)
	if reg == nil {
		reg = &connectorReg{id: id}
		c.p.connectors = append(c.p.connectors, reg)
	}
	// Registering an existing ID updates it (contract §4.2).
	reg.name = name
	reg.placementHandler = handler
	reg.chatGroup = flag("CHAT_GROUP", false)
	reg.needSignature = flag("NEED_SIGNATURE", true)
	reg.options = plainParams(c.params)
	return nestedTrue(), nil, nil
}

func mConnectorUnregister(c *call) (any, *page, *apiError) {
	id := strings.ToLower(strings.TrimSpace(paramStr(c.params, "ID")))
	if id == "" {
		return registerFailure("CONNECTOR_ID_REQUIRED", "The connector ID is not specified")
	}
	for i, reg := range c.p.connectors {
		if reg.id == id {
			c.p.connectors = append(c.p.connectors[:i], c.p.connectors[i+1:]...)
			break
		}
	}
	for k := range c.p.conn {
		if k.connector == id {
			delete(c.p.conn, k)
		}
	}
	return nestedTrue(), nil, nil
}

// connectorLine reads and checks CONNECTOR and LINE.
func connectorLine(c *call) (*connectorReg, *LineState, *apiError) {
	connector := strings.ToLower(strings.TrimSpace(paramStr(c.params, "CONNECTOR")))
	if connector == "" {
		return nil, nil, errArgumentNull("CONNECTOR")
	}
	lineRaw := paramStr(c.params, "LINE")
	if strings.TrimSpace(lineRaw) == "" {
		return nil, nil, errArgumentNull("LINE")
	}
	reg := c.p.connectorLocked(connector)
	if reg == nil {
		return nil, nil, errArgument("Connector " + connector + " is not registered")
	}
	line := c.p.lineLocked(intval(lineRaw))
	return reg, line, nil
}

func mConnectorActivate(c *call) (any, *page, *apiError) {
	reg, line, err := connectorLine(c)
	if err != nil {
		return nil, nil, err
	}
	if line == nil {
		return nil, nil, errNotActiveLine()
	}
	active, ok := c.params.lookupCI("ACTIVE")
	if !ok {
		return nil, nil, errArgumentNull("ACTIVE")
	}
	st := c.p.statusLocked(reg.id, line.id)
	st.active = truthy(active)
	if st.active {
		st.err = false
	}
	return true, nil, nil
}

func mConnectorDataSet(c *call) (any, *page, *apiError) {
	reg, line, err := connectorLine(c)
	if err != nil {
		return nil, nil, err
	}
	if line == nil {
		return nil, nil, errNotActiveLine()
	}
	data := asArray(param(c.params, "DATA"))
	if data == nil {
		return nil, nil, errArgumentNull("DATA")
	}
	st := c.p.statusLocked(reg.id, line.id)
	st.configured = true
	st.data = plainParams(data) // the whole object is replaced each call
	return true, nil, nil
}

func mConnectorStatus(c *call) (any, *page, *apiError) {
	connector := strings.ToLower(strings.TrimSpace(paramStr(c.params, "CONNECTOR")))
	if connector == "" {
		return nil, nil, errArgumentNull("CONNECTOR")
	}
	lineID := intval(param(c.params, "LINE"))
	r := newPHPArray()
	r.Set("LINE", lineID)
	r.Set("CONNECTOR", connector)
	st, ok := c.p.conn[connLineKey{connector, lineID}]
	var conf, errFlag bool
	if ok {
		conf, errFlag = st.active && st.configured, st.err
	}
	r.Set("ERROR", errFlag)
	r.Set("CONFIGURED", conf)
	r.Set("STATUS", conf && !errFlag)
	return r, nil, nil
}

func mConnectorList(c *call) (any, *page, *apiError) {
	r := newPHPArray()
	for _, b := range builtinConnectors {
		r.Set(b[0], b[1])
	}
	for _, reg := range c.p.connectors {
		r.Set(reg.id, reg.name)
	}
	return r, nil, nil
}

func mConnectorSetError(c *call) (any, *page, *apiError) {
	reg, line, err := connectorLine(c)
	if err != nil {
		return nil, nil, err
	}
	if line == nil {
		return nil, nil, errNotActiveLine()
	}
	c.p.statusLocked(reg.id, line.id).err = true
	return true, nil, nil
}

// activeConnectorLine is the precondition of the message methods: the line
// exists and is active and the connector is activated on it.
func activeConnectorLine(c *call) (*connectorReg, *LineState, *apiError) {
	connector := strings.ToLower(strings.TrimSpace(paramStr(c.params, "CONNECTOR")))
	if connector == "" {
		return nil, nil, errArgumentNull("CONNECTOR")
	}
	lineRaw := paramStr(c.params, "LINE")
	if strings.TrimSpace(lineRaw) == "" {
		return nil, nil, errArgumentNull("LINE")
	}
	reg := c.p.connectorLocked(connector)
	line := c.p.lineLocked(intval(lineRaw))
	if reg == nil || line == nil || !line.active {
		return nil, nil, errNotActiveLine()
	}
	st, ok := c.p.conn[connLineKey{reg.id, line.id}]
	if !ok || !st.active {
		return nil, nil, errNotActiveLine()
	}
	return reg, line, nil
}

func (l *LineState) dialogByChatLocked(chatID string) *Dialog {
	for i := len(l.dialogs) - 1; i >= 0; i-- {
		if l.dialogs[i].ChatID == chatID {
			return l.dialogs[i]
		}
	}
	return nil
}

// dialogLocked finds or opens the dialog of an external user (or chat, with
// CHAT_GROUP) and makes sure it has an open session. It reports whether a
// new session started.
func (c *call) dialogLocked(reg *connectorReg, line *LineState, userID, chatID string) (*Dialog, bool) {
	for _, d := range line.dialogs {
		if d.Connector != reg.id {
			continue
		}
		if (reg.chatGroup && d.ChatID == chatID) || (!reg.chatGroup && d.UserID == userID) {
			if d.Closed {
				c.p.seq.session++
				d.SessionID = strconv.Itoa(c.p.seq.session)
				d.Closed = false
				return d, true
			}
			return d, false
		}
	}
	c.p.seq.imChat++
	c.p.seq.session++
	c.p.seq.connUser++
	d := &Dialog{
		Connector:       reg.id,
		UserID:          userID,
		ChatID:          chatID,
		IMChatID:        strconv.Itoa(c.p.seq.imChat),
		SessionID:       strconv.Itoa(c.p.seq.session),
		ConnectorUserID: strconv.Itoa(c.p.seq.connUser),
	}
	line.dialogs = append(line.dialogs, d)
	return d, true
}

// dialogEvent builds ONIMCONNECTORDIALOGSTART/FINISH data (contract §4.6).
func dialogEvent(memberID, event string, line int, d *Dialog) pendingEvent {
	var f formFields
	f.add("data[CONNECTOR]", d.Connector)
	f.add("data[LINE]", strconv.Itoa(line))
	pre := "data[DATA][0]"
	f.add(pre+"[connector][connector_id]", d.Connector)
	f.add(pre+"[connector][line_id]", strconv.Itoa(line))
	f.add(pre+"[connector][chat_id]", d.ChatID)
	f.add(pre+"[connector][user_id]", d.UserID)
	f.add(pre+"[session][id]", d.SessionID)
	f.add(pre+"[session][closed]", map[bool]string{true: "Y", false: "N"}[d.Closed])
	f.add(pre+"[session][parent_id]", "0")
	f.add(pre+"[session][close_term]", "1440")
	f.add(pre+"[chat][id]", d.IMChatID)
	f.add(pre+"[user][id]", d.ConnectorUserID)
	return pendingEvent{memberID: memberID, event: event, data: f, mode: authMinimal}
}

func messageItems(c *call) ([]any, *apiError) {
	msgs := asArray(param(c.params, "MESSAGES"))
	if msgs.Len() == 0 {
		return nil, errArgumentNull("MESSAGES")
	}
	return msgs.Values(), nil
}

func itemFailure(errs ...string) any {
	r := newPHPArray()
	r.Set("SUCCESS", false)
	r.Set("ERRORS", errs)
	return r
}

// echoMessage is the "message" block of a send.messages result: the input
// with date turned into an empty object, as Bitrix24 returns it.
func echoMessage(m any) any {
	out := newPHPArray()
	a := asArray(m)
	for _, k := range a.Keys() {
		v, _ := a.Get(k)
		if k == "date" {
			out.Set(k, map[string]any{})
			continue
		}
		out.Set(k, v)
	}
	return out
}

// echoChat is the "chat" block of a result: url comes back as description.
func echoChat(ch any) any {
	out := newPHPArray()
	a := asArray(ch)
	for _, k := range a.Keys() {
		if k == "url" {
			continue
		}
		v, _ := a.Get(k)
		out.Set(k, v)
	}
	if u := childStr(ch, "url"); u != "" {
		out.Set("description", u)
	}
	return out
}

func readFiles(v any) []File {
	var out []File
	for _, f := range asArray(v).Values() {
		out = append(out, File{URL: childStr(f, "url"), Name: childStr(f, "name")})
	}
	return out
}

func readUser(u any) ExternalUser {
	return ExternalUser{
		ID:                childStr(u, "id"),
		Name:              childStr(u, "name"),
		LastName:          childStr(u, "last_name"),
		Phone:             childStr(u, "phone"),
		Email:             childStr(u, "email"),
		PictureURL:        childStr(child(u, "picture"), "url"),
		URL:               childStr(u, "url"),
		Gender:            cmp.Or(childStr(u, "gender"), childStr(u, "sex")),
		SkipPhoneValidate: strings.EqualFold(childStr(u, "skip_phone_validate"), "Y"),
	}
}

func dataResult(items []any) any {
	data := newPHPArray()
	data.Set("RESULT", items)
	r := newPHPArray()
	r.Set("SUCCESS", true)
	r.Set("DATA", data)
	return r
}

// mSendMessages is imconnector.send.messages (contract §4.4).
func mSendMessages(c *call) (any, *page, *apiError) {
	reg, line, err := activeConnectorLine(c)
	if err != nil {
		return nil, nil, err
	}
	items, err := messageItems(c)
	if err != nil {
		return nil, nil, err
	}
	results := make([]any, 0, len(items))
	for _, item := range items {
		u, m, ch := child(item, "user"), child(item, "message"), child(item, "chat")
		if u == nil || m == nil || ch == nil {
			results = append(results, itemFailure("user, message and chat are required"))
			continue
		}
		userID, chatID := childStr(u, "id"), childStr(ch, "id")
		text, files := childStr(m, "text"), readFiles(child(m, "files"))
		switch {
		case userID == "":
			results = append(results, itemFailure("user.id is required"))
			continue
		case chatID == "":
			results = append(results, itemFailure("chat.id is required"))
			continue
		case text == "" && len(files) == 0:
			results = append(results, itemFailure("message.text or message.files is required"))
			continue
		}
		d, started := c.dialogLocked(reg, line, userID, chatID)
		d.ChatID = chatID
		if n := childStr(ch, "name"); n != "" {
			d.ChatName = n
		}
		if started {
			c.emit(dialogEvent(c.p.memberID, "ONIMCONNECTORDIALOGSTART", line.id, d))
		}
		c.p.seq.imMessage++
		date, _ := strconv.ParseInt(childStr(m, "date"), 10, 64)
		line.messages = append(line.messages, Message{
			Direction:       Inbound,
			Connector:       reg.id,
			Line:            line.id,
			IMChatID:        d.IMChatID,
			IMMessageID:     strconv.Itoa(c.p.seq.imMessage),
			SessionID:       d.SessionID,
			ConnectorUserID: d.ConnectorUserID,
			ChatID:          chatID,
			ChatName:        childStr(ch, "name"),
			ChatURL:         childStr(ch, "url"),
			User:            readUser(u),
			ExternalID:      childStr(m, "id"),
			Date:            date,
			Text:            text,
			Files:           files,
			DisableCRM:      strings.EqualFold(childStr(m, "disable_crm"), "Y"),
			OperatorID:      intval(child(m, "user_id")),
			Time:            c.now,
		})
		r := newPHPArray()
		r.Set("user", d.ConnectorUserID)
		r.Set("message", echoMessage(m))
		r.Set("chat", echoChat(ch))
		r.Set("extra", map[string]any{})
		r.Set("SUCCESS", true)
		sess := newPHPArray()
		sess.Set("ID", d.SessionID)
		sess.Set("CHAT_ID", d.IMChatID)
		r.Set("session", sess)
		results = append(results, r)
	}
	return dataResult(results), nil, nil
}

// findInbound locates a message the connector sent earlier.
func (l *LineState) findInboundLocked(connector, externalID, chatID string) *Message {
	for i := len(l.messages) - 1; i >= 0; i-- {
		m := &l.messages[i]
		if m.Direction == Inbound && m.Connector == connector && m.ExternalID == externalID && (chatID == "" || m.ChatID == chatID) {
			return m
		}
	}
	return nil
}

func mUpdateMessages(c *call) (any, *page, *apiError) {
	return editMessages(c, false)
}

func mDeleteMessages(c *call) (any, *page, *apiError) {
	return editMessages(c, true)
}

// editMessages implements update.messages and delete.messages: items are
// identified by message.id + chat.id, results have no session block.
func editMessages(c *call, del bool) (any, *page, *apiError) {
	reg, line, err := activeConnectorLine(c)
	if err != nil {
		return nil, nil, err
	}
	items, err := messageItems(c)
	if err != nil {
		return nil, nil, err
	}
	results := make([]any, 0, len(items))
	for _, item := range items {
		m, ch := child(item, "message"), child(item, "chat")
		msg := line.findInboundLocked(reg.id, childStr(m, "id"), childStr(ch, "id"))
		if msg == nil {
			results = append(results, itemFailure("message not found"))
			continue
		}
		if del {
			msg.Deleted = true
		} else {
			if t, ok := asArray(m).Get("text"); ok {
				msg.Text = str(t)
			}
			if f := child(m, "files"); f != nil {
				msg.Files = readFiles(f)
			}
			msg.Edits++
		}
		r := newPHPArray()
		r.Set("user", msg.ConnectorUserID)
		r.Set("message", echoMessage(m))
		r.Set("chat", echoChat(ch))
		r.Set("SUCCESS", true)
		results = append(results, r)
	}
	return dataResult(results), nil, nil
}

func mStatusDelivery(c *call) (any, *page, *apiError) { return statusReports(c, false) }
func mStatusReading(c *call) (any, *page, *apiError)  { return statusReports(c, true) }

// statusReports records send.status.delivery/reading items (contract §4.5).
func statusReports(c *call, read bool) (any, *page, *apiError) {
	reg, line, err := activeConnectorLine(c)
	if err != nil {
		return nil, nil, err
	}
	items, err := messageItems(c)
	if err != nil {
		return nil, nil, err
	}
	for _, item := range items {
		im, m := child(item, "im"), child(item, "message")
		rep := StatusReport{
			Connector:   reg.id,
			Line:        line.id,
			IMChatID:    childStr(im, "chat_id"),
			IMMessageID: childStr(im, "message_id"),
			ChatID:      childStr(child(item, "chat"), "id"),
			Time:        c.now,
		}
		rep.Date, _ = strconv.ParseInt(childStr(m, "date"), 10, 64)
		switch ids := child(m, "id").(type) {
		case *phpArray:
			for _, v := range ids.Values() {
				rep.ExternalIDs = append(rep.ExternalIDs, str(v))
			}
		case nil:
		default:
			rep.ExternalIDs = []string{str(ids)}
		}
		for i := range line.messages {
			om := &line.messages[i]
			if om.Direction == Outbound && om.IMMessageID == rep.IMMessageID {
				if read {
					om.Read = true
				} else {
					om.Delivered = true
				}
			}
		}
		if read {
			line.reads = append(line.reads, rep)
		} else {
			line.deliveries = append(line.deliveries, rep)
		}
	}
	r := newPHPArray()
	r.Set("SUCCESS", true)
	r.Set("DATA", newPHPArray())
	return r, nil, nil
}

func mChatNameSet(c *call) (any, *page, *apiError) {
	reg, line, err := activeConnectorLine(c)
	if err != nil {
		return nil, nil, err
	}
	chatID := paramStr(c.params, "CHAT_ID")
	name := paramStr(c.params, "NAME")
	if chatID == "" {
		return nil, nil, errArgumentNull("CHAT_ID")
	}
	if name == "" {
		return nil, nil, errArgumentNull("NAME")
	}
	userID := paramStr(c.params, "USER_ID")
	if !reg.chatGroup && userID == "" {
		return nil, nil, errArgumentNull("USER_ID")
	}
	for _, d := range line.dialogs {
		if d.Connector == reg.id && d.ChatID == chatID && (reg.chatGroup || d.UserID == userID) {
			d.ChatName = name
		}
	}
	return true, nil, nil
}

func lineRow(l *LineState) *phpArray {
	r := newPHPArray()
	r.Set("ID", strconv.Itoa(l.id))
	r.Set("LINE_NAME", l.name)
	r.Set("ACTIVE", map[bool]string{true: "Y", false: "N"}[l.active])
	if l.crmSource != "" {
		r.Set("CRM_SOURCE", l.crmSource)
	}
	return r
}

// mOpenLinesConfigUpdate changes a line's settings (only those the
// simulator models: LINE_NAME, ACTIVE, CRM_SOURCE).
func mOpenLinesConfigUpdate(c *call) (any, *page, *apiError) {
	id := intval(param(c.params, "CONFIG_ID"))
	l := c.p.lineLocked(id)
	if l == nil {
		return nil, nil, newAPIError(400, "CONFIG_NOT_FOUND", "Config not found")
	}
	params := param(c.params, "PARAMS")
	if params == nil {
		return nil, nil, newAPIError(400, "PARAMS_ERROR", "Params is not specified")
	}
	if v := childStr(params, "LINE_NAME"); v != "" {
		l.name = v
	}
	if v := childStr(params, "ACTIVE"); v != "" {
		l.active = v == "Y"
	}
	if v := childStr(params, "CRM_SOURCE"); v != "" {
		l.crmSource = v
	}
	return true, nil, nil
}

func mOpenLinesList(c *call) (any, *page, *apiError) {
	rows := make([]any, 0, len(c.p.lines))
	for _, l := range c.p.lines {
		rows = append(rows, lineRow(l))
	}
	return rows, nil, nil
}

func mOpenLinesConfigGet(c *call) (any, *page, *apiError) {
	id := intval(param(c.params, "CONFIG_ID"))
	l := c.p.lineLocked(id)
	if l == nil {
		return nil, nil, newAPIError(400, "CONFIG_NOT_FOUND", "Config not found")
	}
	return lineRow(l), nil, nil
}

// CloseSession closes the open session of the dialog with externalChatID,
// as an operator or the auto-close timer would, and posts
// ONIMCONNECTORDIALOGFINISH to bound handlers. The next inbound message
// opens a new session in the same IM chat.
func (s *Server) CloseSession(ctx context.Context, memberID string, lineID int, externalChatID string) error {
	s.mu.Lock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	line := p.lineLocked(lineID)
	var d *Dialog
	if line != nil {
		d = line.dialogByChatLocked(externalChatID)
	}
	if d == nil || d.Closed {
		s.mu.Unlock()
		return fmt.Errorf("b24sim: close session: no open dialog with chat %q on line %d", externalChatID, lineID)
	}
	d.Closed = true
	posts := s.prepareLocked(dialogEvent(p.memberID, "ONIMCONNECTORDIALOGFINISH", lineID, d), s.clock())
	s.mu.Unlock()
	return s.deliverNow(ctx, posts, "ONIMCONNECTORDIALOGFINISH")
}
