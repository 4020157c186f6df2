package b24sim

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Business-process robots (automation rules) of the app: bizproc.robot.*
// and bizproc.event.send, after Bitrix\Bizproc\RestService and
// CBPRestActivity. Robots and activities share one code space per app in
// Bitrix24; the simulator has robots only.

// Robot is a bizproc.robot.add registration.
type Robot struct {
	Code    string
	Handler string
	// AuthUserID is the user whose token the handler gets; 0 means none was
	// given (the simulator then sends the portal admin's).
	AuthUserID int
	// Name is NAME as a string; for a language map it is the entry for the
	// portal language, else "en", else the first one. NameLang holds the map.
	Name        string
	NameLang    map[string]string
	Description string
	// UseSubscription is USE_SUBSCRIPTION as sent: "Y", "N", or "" (not set:
	// the user decides in the designer, default no). Only "Y" makes a run
	// wait for bizproc.event.send.
	UseSubscription  string
	UsePlacement     bool
	PlacementHandler string
	Properties       map[string]RobotProperty
	ReturnProperties map[string]RobotProperty
	// PropertyOrder and ReturnPropertyOrder list the codes in the order
	// registered (the order RunRobot posts properties in).
	PropertyOrder       []string
	ReturnPropertyOrder []string
	DocumentType        []string
	Filter              map[string]any
	Added               time.Time
}

// RobotProperty is one entry of PROPERTIES or RETURN_PROPERTIES.
type RobotProperty struct {
	Name        string // see Robot.Name
	NameLang    map[string]string
	Description string
	Type        string // as sent ("string", "text", "select", "bool", "int", "user", ...); "" means string
	Required    bool
	Multiple    bool
	Default     any // as decoded: string, json.Number, bool, []any, map[string]any
	Options     any // select options as decoded (map or list)
}

func (r *Robot) clone() Robot {
	out := *r
	out.NameLang = cloneMap(r.NameLang)
	out.Properties = cloneMap(r.Properties)
	out.ReturnProperties = cloneMap(r.ReturnProperties)
	out.PropertyOrder = slices.Clone(r.PropertyOrder)
	out.ReturnPropertyOrder = slices.Clone(r.ReturnPropertyOrder)
	out.DocumentType = slices.Clone(r.DocumentType)
	out.Filter = cloneMap(r.Filter)
	return out
}

// RobotResult is an accepted bizproc.event.send answer to a robot run.
type RobotResult struct {
	EventToken string
	Code       string   // robot code of the run
	WorkflowID string   // workflow_id of the run
	DocumentID []string // document_id of the run
	// ReturnValues is RETURN_VALUES as sent (nil if absent). Bitrix24 keeps
	// only keys registered in RETURN_PROPERTIES; the simulator records all.
	ReturnValues map[string]any
	LogMessage   string
	UserID       int // user of the token that answered
	Time         time.Time
}

// robotRun is the state of one RunRobot: the activity waiting (or not) for
// bizproc.event.send.
type robotRun struct {
	code         string
	workflowID   string
	documentID   []string
	subscription bool
	answered     bool
}

// Robots returns the registered robots in registration order.
func (p *Portal) Robots() []Robot {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	out := make([]Robot, 0, len(p.robots))
	for _, r := range p.robots {
		out = append(out, r.clone())
	}
	return out
}

// RobotResults returns the accepted bizproc.event.send calls, oldest first.
func (p *Portal) RobotResults() []RobotResult {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	out := make([]RobotResult, 0, len(p.robotResults))
	for _, r := range p.robotResults {
		r.DocumentID = slices.Clone(r.DocumentID)
		r.ReturnValues = cloneMap(r.ReturnValues)
		out = append(out, r)
	}
	return out
}

func (p *Portal) robotLocked(code string) *Robot {
	for _, r := range p.robots {
		if r.Code == code {
			return r
		}
	}
	return nil
}

func errActivityValidation(desc string) *apiError {
	return newAPIError(http.StatusBadRequest, "ERROR_ACTIVITY_VALIDATION_FAILURE", desc)
}

func errActivityNotFound() *apiError {
	return newAPIError(http.StatusBadRequest, "ERROR_ACTIVITY_NOT_FOUND", "Activity or Robot not found!")
}

// errAccessDenied is Bitrix\Rest\AccessException without a message.
func errAccessDenied() *apiError {
	return newAPIError(http.StatusForbidden, "ACCESS_DENIED", "Access denied!")
}

var (
	activityCodeRe = regexp.MustCompile(`(?i)^[a-z0-9.\-_]+$`)
	propertyKeyRe  = regexp.MustCompile(`(?i)^[a-z][a-z0-9_]*$`)
)

// checkAdmin is RestService::checkAdminPermissions: robots are managed by
// portal administrators only.
func checkAdmin(c *call) *apiError {
	if c.userID != c.p.adminID {
		return errAccessDenied()
	}
	return nil
}

func validateActivityCode(v any) *apiError {
	if !truthy(v) {
		return errActivityValidation("Empty activity code!")
	}
	if _, isArr := v.(*phpArray); isArr || !activityCodeRe.MatchString(str(v)) {
		return errActivityValidation("Wrong activity code!")
	}
	return nil
}

// validateActivityHandler is HandlerHelper::checkCallback: a host with a
// dot and an http(s) scheme. The simulator also accepts "localhost" so that
// a gateway run next to cmd/b24sim can register robots.
func validateActivityHandler(v any) *apiError {
	u, err := url.Parse(strings.TrimSpace(str(v)))
	host := ""
	if err == nil {
		host = u.Hostname()
	}
	if err != nil || host == "" || (strings.IndexByte(host, '.') <= 0 && host != "localhost") {
		return newAPIError(http.StatusBadRequest, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return newAPIError(http.StatusBadRequest, "ERROR_UNSUPPORTED_PROTOCOL", "Unsupported handler protocol")
	}
	return nil
}

// localized reads a "string or lang → string map" value.
func localized(v any, lang string) (string, map[string]string) {
	a, ok := v.(*phpArray)
	if !ok {
		return str(v), nil
	}
	m := make(map[string]string, a.Len())
	for _, k := range a.Keys() {
		x, _ := a.Get(k)
		m[k] = str(x)
	}
	for _, want := range []string{lang, "en"} {
		for k, s := range m {
			if strings.EqualFold(k, want) {
				return s, m
			}
		}
	}
	if a.Len() > 0 {
		return m[a.Keys()[0]], m
	}
	return "", m
}

// parseRobotProperties validates and reads PROPERTIES / RETURN_PROPERTIES
// (RestService::validateActivityProperties). Property codes keep their
// case; the keys inside a property are case-insensitive (Name or NAME).
func parseRobotProperties(v any, lang string) (map[string]RobotProperty, []string, *apiError) {
	a, ok := v.(*phpArray)
	if !ok {
		return nil, nil, errActivityValidation("Wrong properties array!")
	}
	props := make(map[string]RobotProperty, a.Len())
	var order []string
	for _, k := range a.Keys() {
		if !propertyKeyRe.MatchString(k) {
			return nil, nil, errActivityValidation("Wrong property key (" + k + ")!")
		}
		raw, _ := a.Get(k)
		pa := asArray(raw)
		nameRaw, _ := pa.lookupCI("NAME")
		if !truthy(nameRaw) {
			return nil, nil, errActivityValidation("Empty property NAME (" + k + ")!")
		}
		var prop RobotProperty
		prop.Name, prop.NameLang = localized(nameRaw, lang)
		if d, ok := pa.lookupCI("DESCRIPTION"); ok {
			prop.Description, _ = localized(d, lang)
		}
		if t, ok := pa.lookupCI("TYPE"); ok {
			prop.Type = str(t)
		}
		if r, ok := pa.lookupCI("REQUIRED"); ok {
			prop.Required = yesNo(r)
		}
		if m, ok := pa.lookupCI("MULTIPLE"); ok {
			prop.Multiple = yesNo(m)
		}
		if d, ok := pa.lookupCI("DEFAULT"); ok {
			prop.Default = plain(d)
		}
		if o, ok := pa.lookupCI("OPTIONS"); ok {
			prop.Options = plain(o)
		}
		props[k] = prop
		order = append(order, k)
	}
	return props, order, nil
}

func stringList(v any) []string {
	var out []string
	for _, x := range asArray(v).Values() {
		out = append(out, str(x))
	}
	return out
}

// mRobotAdd is bizproc.robot.add (RestService::addActivityInternal with
// validateRobot).
func mRobotAdd(c *call) (any, *page, *apiError) {
	if err := checkAdmin(c); err != nil {
		return nil, nil, err
	}
	if c.params.Len() == 0 {
		return nil, nil, errActivityValidation("Empty data!")
	}
	code := param(c.params, "CODE")
	if err := validateActivityCode(code); err != nil {
		return nil, nil, err
	}
	handler := param(c.params, "HANDLER")
	if err := validateActivityHandler(handler); err != nil {
		return nil, nil, err
	}
	name := param(c.params, "NAME")
	if !truthy(name) {
		return nil, nil, errActivityValidation("Empty activity NAME!")
	}
	r := &Robot{Code: str(code), Handler: strings.TrimSpace(str(handler)), Added: c.now}
	r.Name, r.NameLang = localized(name, c.p.lang)
	if v, ok := c.params.lookupCI("PROPERTIES"); ok && v != nil {
		props, order, err := parseRobotProperties(v, c.p.lang)
		if err != nil {
			return nil, nil, err
		}
		r.Properties, r.PropertyOrder = props, order
	}
	if v, ok := c.params.lookupCI("RETURN_PROPERTIES"); ok && v != nil {
		props, order, err := parseRobotProperties(v, c.p.lang)
		if err != nil {
			return nil, nil, err
		}
		r.ReturnProperties, r.ReturnPropertyOrder = props, order
	}
	if v, ok := c.params.lookupCI("FILTER"); ok && v != nil {
		f, isArr := v.(*phpArray)
		if !isArr {
			return nil, nil, errActivityValidation("Wrong activity FILTER!")
		}
		r.Filter = plainParams(f)
	}
	if c.p.robotLocked(r.Code) != nil {
		return nil, nil, newAPIError(http.StatusBadRequest, "ERROR_ACTIVITY_ALREADY_INSTALLED", "Activity or Robot already installed!")
	}
	r.AuthUserID = intval(param(c.params, "AUTH_USER_ID"))
	r.UseSubscription = paramStr(c.params, "USE_SUBSCRIPTION")
	r.UsePlacement = paramStr(c.params, "USE_PLACEMENT") == "Y"
	if r.UsePlacement {
		ph := param(c.params, "PLACEMENT_HANDLER")
		if err := validateActivityHandler(ph); err != nil {
			return nil, nil, err
		}
		r.PlacementHandler = strings.TrimSpace(str(ph))
	}
	if d, ok := c.params.lookupCI("DESCRIPTION"); ok {
		r.Description, _ = localized(d, c.p.lang)
	}
	r.DocumentType = stringList(param(c.params, "DOCUMENT_TYPE"))
	c.p.robots = append(c.p.robots, r)
	return true, nil, nil
}

// mRobotUpdate is bizproc.robot.update: CODE plus FIELDS with the keys to
// change (RestService::updateActivityInternal).
func mRobotUpdate(c *call) (any, *page, *apiError) {
	if err := checkAdmin(c); err != nil {
		return nil, nil, err
	}
	code := param(c.params, "CODE")
	if err := validateActivityCode(code); err != nil {
		return nil, nil, err
	}
	r := c.p.robotLocked(str(code))
	if r == nil {
		return nil, nil, errActivityNotFound()
	}
	fields := asArray(param(c.params, "FIELDS"))
	if fields.Len() == 0 {
		return nil, nil, errActivityValidation("No fields to update")
	}
	get := func(k string) (any, bool) {
		v, ok := fields.lookupCI(k)
		return v, ok && v != nil
	}
	// Validate everything first so that a failed update changes nothing.
	upd := r.clone()
	changed := false
	if v, ok := get("HANDLER"); ok {
		if err := validateActivityHandler(v); err != nil {
			return nil, nil, err
		}
		upd.Handler, changed = strings.TrimSpace(str(v)), true
	}
	if v, ok := get("AUTH_USER_ID"); ok {
		upd.AuthUserID, changed = intval(v), true
	}
	if v, ok := get("USE_SUBSCRIPTION"); ok {
		upd.UseSubscription, changed = str(v), true
	}
	if v, ok := get("USE_PLACEMENT"); ok {
		upd.UsePlacement, changed = str(v) == "Y", true
	}
	if v, ok := get("NAME"); ok && truthy(v) {
		upd.Name, upd.NameLang = localized(v, c.p.lang)
		changed = true
	}
	if v, ok := get("DESCRIPTION"); ok {
		upd.Description, _ = localized(v, c.p.lang)
		changed = true
	}
	if v, ok := get("PROPERTIES"); ok {
		props, order, err := parseRobotProperties(v, c.p.lang)
		if err != nil {
			return nil, nil, err
		}
		upd.Properties, upd.PropertyOrder, changed = props, order, true
	}
	if v, ok := get("RETURN_PROPERTIES"); ok {
		props, order, err := parseRobotProperties(v, c.p.lang)
		if err != nil {
			return nil, nil, err
		}
		upd.ReturnProperties, upd.ReturnPropertyOrder, changed = props, order, true
	}
	if v, ok := get("DOCUMENT_TYPE"); ok {
		upd.DocumentType, changed = stringList(v), true
	}
	if v, ok := get("FILTER"); ok {
		switch f := v.(type) {
		case *phpArray:
			upd.Filter = plainParams(f)
		default:
			if truthy(v) {
				return nil, nil, errActivityValidation("Wrong activity FILTER!")
			}
			upd.Filter = nil
		}
		changed = true
	}
	if !changed {
		return nil, nil, errActivityValidation("No fields to update")
	}
	if v, ok := get("PLACEMENT_HANDLER"); ok {
		if err := validateActivityHandler(v); err != nil {
			return nil, nil, err
		}
		upd.PlacementHandler = strings.TrimSpace(str(v))
	}
	if !upd.UsePlacement {
		upd.PlacementHandler = ""
	}
	*r = upd
	return true, nil, nil
}

// mRobotDelete is bizproc.robot.delete (CODE).
func mRobotDelete(c *call) (any, *page, *apiError) {
	if err := checkAdmin(c); err != nil {
		return nil, nil, err
	}
	code := param(c.params, "CODE")
	if err := validateActivityCode(code); err != nil {
		return nil, nil, err
	}
	i := slices.IndexFunc(c.p.robots, func(r *Robot) bool { return r.Code == str(code) })
	if i < 0 {
		return nil, nil, errActivityNotFound()
	}
	c.p.robots = slices.Delete(c.p.robots, i, i+1)
	return true, nil, nil
}

// mRobotList is bizproc.robot.list: the app's robot codes.
func mRobotList(c *call) (any, *page, *apiError) {
	if err := checkAdmin(c); err != nil {
		return nil, nil, err
	}
	out := make([]string, 0, len(c.p.robots))
	for _, r := range c.p.robots {
		out = append(out, r.Code)
	}
	return out, nil, nil
}

// mEventSend is bizproc.event.send. Bitrix24 answers 403 ACCESS_DENIED for
// a token it cannot verify; for a verified token whose activity no longer
// waits (answered already, or a robot without subscription) the answer
// depends on the workflow's state. The simulator refuses every token that
// is not a pending subscription with 403 ACCESS_DENIED, so a double answer
// shows up in tests.
func mEventSend(c *call) (any, *page, *apiError) {
	token := paramStr(c.params, "EVENT_TOKEN")
	run, ok := c.p.robotRuns[token]
	if token == "" || !ok || !run.subscription || run.answered {
		return nil, nil, errAccessDenied()
	}
	run.answered = true
	res := RobotResult{
		EventToken: token, Code: run.code, WorkflowID: run.workflowID, DocumentID: slices.Clone(run.documentID),
		LogMessage: paramStr(c.params, "LOG_MESSAGE"), UserID: c.userID, Time: c.now,
	}
	if rv := asArray(param(c.params, "RETURN_VALUES")); rv != nil {
		res.ReturnValues = plainParams(rv)
	}
	c.p.robotResults = append(c.p.robotResults, res)
	return true, nil, nil
}

// RobotRunEvent is the Event of the EventDelivery recorded for RunRobot.
const RobotRunEvent = "BIZPROC_ROBOT"

// ErrUnknownRobot is returned (wrapped) by RunRobot for a code that is not
// registered on the portal.
var ErrUnknownRobot = errors.New("robot not registered")

// RunRobot simulates an automation rule running the app's robot code on a
// CRM document, e.g. documentID {"crm", "CCrmDocumentDeal", "DEAL_8061"}:
// it posts to the robot's HANDLER what CBPRestActivity sends, form-encoded
// with percent-encoded bracket keys, in this order: workflow_id, code,
// document_id[0..2], document_type[0..2] (the last element without its
// "_<id>" suffix, e.g. "DEAL"), event_token, properties[<code>] for every
// registered property in registration order (the value from properties,
// else the property's Default, else ""; a Multiple property is sent as
// properties[<code>][0]), use_subscription ("Y" only if registered with
// USE_SUBSCRIPTION=Y, else "N"), timeout_duration ("0"), ts, and the auth
// block of an installation (access_token and refresh_token of AUTH_USER_ID,
// or of the admin when it is 0, expires, expires_in, scope, domain,
// server_endpoint, status, client_endpoint, member_id, user_id,
// application_token), as the real queue sends robots a token pair.
//
// There are no retries. The delivery is recorded in Deliveries with Event
// RobotRunEvent. It returns the event_token (valid for one
// bizproc.event.send when the robot uses subscription) and the handler's
// HTTP status; err reports setup problems (unknown portal or robot, bad
// document id, properties not registered, payment required) and transport
// errors. A non-2xx answer is not an error.
func (s *Server) RunRobot(ctx context.Context, memberID, code string, documentID []string, properties map[string]string) (eventToken string, status int, err error) {
	if len(documentID) != 3 {
		return "", 0, fmt.Errorf("b24sim: run robot %s: document id needs 3 elements (module, entity, id), got %d", code, len(documentID))
	}
	s.mu.Lock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		s.mu.Unlock()
		return "", 0, err
	}
	r := p.robotLocked(code)
	if r == nil {
		s.mu.Unlock()
		return "", 0, fmt.Errorf("b24sim: run robot %q on portal %s: %w", code, p.memberID, ErrUnknownRobot)
	}
	if p.paymentRequired {
		s.mu.Unlock()
		return "", 0, fmt.Errorf("b24sim: run robot %q: Rest application status error: payment required", code)
	}
	for k := range properties {
		if _, ok := r.Properties[k]; !ok {
			s.mu.Unlock()
			return "", 0, fmt.Errorf("b24sim: run robot %q: property %q is not registered", code, k)
		}
	}
	now := s.clock()
	workflowID := randomHex(7) + "." + randomDigits(8)
	activity := "A" + randomDigits(5) + "_" + randomDigits(5) + "_" + randomDigits(5) + "_" + randomDigits(5)
	unsigned := workflowID + "|" + activity + "|" + randomAlnum(32)
	mac := hmac.New(sha256.New, []byte(p.appToken))
	mac.Write([]byte(unsigned))
	eventToken = unsigned + "." + hex.EncodeToString(mac.Sum(nil))
	subscribed := r.UseSubscription == "Y"

	var f formFields
	f.add("workflow_id", workflowID)
	f.add("code", r.Code)
	for i, v := range documentID {
		f.add("document_id["+strconv.Itoa(i)+"]", v)
	}
	for i, v := range documentTypeOf(documentID) {
		f.add("document_type["+strconv.Itoa(i)+"]", v)
	}
	f.add("event_token", eventToken)
	for _, k := range r.PropertyOrder {
		prop := r.Properties[k]
		key := "properties[" + k + "]"
		if v, ok := properties[k]; ok {
			if prop.Multiple {
				key += "[0]"
			}
			f.add(key, v)
			continue
		}
		switch d := prop.Default.(type) {
		case []any:
			for i, x := range d {
				f.add(key+"["+strconv.Itoa(i)+"]", str(x))
			}
		case map[string]any:
			for _, dk := range sortedMapKeys(d) {
				f.add(key+"["+dk+"]", str(d[dk]))
			}
		default:
			f.add(key, str(d))
		}
	}
	f.add("use_subscription", map[bool]string{true: "Y", false: "N"}[subscribed])
	f.add("timeout_duration", "0")
	f.add("ts", strconv.FormatInt(now.Unix(), 10))
	f = append(f, s.authFieldsLocked(p, authInstall, r.AuthUserID, now)...)

	// Registered before posting: a handler may answer from within the
	// request.
	p.robotRuns[eventToken] = &robotRun{code: r.Code, workflowID: workflowID, documentID: slices.Clone(documentID), subscription: subscribed}
	pp := preparedPost{memberID: p.memberID, event: RobotRunEvent, binding: EventBinding{Event: RobotRunEvent, Handler: r.Handler}, body: f.encode()}
	s.mu.Unlock()

	d := s.post(ctx, pp)
	if d.Err != "" {
		return eventToken, 0, errors.New(d.Err)
	}
	return eventToken, d.Status, nil
}

// documentTypeOf derives document_type from document_id: DEAL_8061 → DEAL,
// DYNAMIC_128_5 → DYNAMIC_128.
func documentTypeOf(id []string) []string {
	typ := id[2]
	if i := strings.LastIndexByte(typ, '_'); i > 0 && isDigits(typ[i+1:]) {
		typ = typ[:i]
	}
	return []string{id[0], id[1], typ}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	limit := big.NewInt(int64(len(alphabet)))
	for i := range b {
		x, err := rand.Int(rand.Reader, limit)
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[x.Int64()]
	}
	return string(b)
}

func randomAlnum(n int) string { return randomFrom(alnum, n) }

// randomDigits returns n decimal digits without a leading zero.
func randomDigits(n int) string {
	return randomFrom("123456789", 1) + randomFrom("0123456789", n-1)
}
