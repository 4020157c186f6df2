package b24sim

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// methodFunc runs one REST method. It is called with the Server lock held
// and must not block; events it triggers are queued on the call and
// delivered after the lock is released.
type methodFunc func(c *call) (any, *page, *apiError)

type methodSpec struct {
	scope   string // required token scope; "" for methods every app may call
	fn      methodFunc
	noBatch bool // batch itself: Bitrix24 has no nested batch
}

// page carries list metadata: total and the next start offset.
type page struct {
	total   int
	next    int  // 0 when there is no further page
	noTotal bool // start=-1 fast mode: neither total nor next
}

// call is the context of one method execution.
type call struct {
	s       *Server
	p       *Portal
	userID  int
	scope   string // of the access token, fixed when it was issued
	method  string
	params  *phpArray
	now     time.Time
	base    string
	inBatch bool
	events  *[]pendingEvent
}

func (c *call) emit(ev pendingEvent) { *c.events = append(*c.events, ev) }

// timing is the "time" object of every REST answer.
type timing struct {
	Start            float64 `json:"start"`
	Finish           float64 `json:"finish"`
	Duration         float64 `json:"duration"`
	Processing       float64 `json:"processing"`
	DateStart        string  `json:"date_start"`
	DateFinish       string  `json:"date_finish"`
	OperatingResetAt int64   `json:"operating_reset_at"`
	Operating        float64 `json:"operating"`
}

const isoLayout = "2006-01-02T15:04:05-07:00"

// timingFor builds "time" for a call that started at start (simulator
// clock) and took elapsed wall time. Mixing the two keeps durations
// realistic while a fake clock stands still.
func (s *Server) timingFor(start time.Time, elapsed time.Duration) timing {
	finish := start.Add(elapsed)
	d := elapsed.Seconds()
	return timing{
		Start:            unixFloat(start),
		Finish:           unixFloat(finish),
		Duration:         d,
		Processing:       d * 0.6,
		DateStart:        start.In(s.loc).Format(isoLayout),
		DateFinish:       finish.In(s.loc).Format(isoLayout),
		OperatingResetAt: start.Add(10 * time.Minute).Unix(),
		Operating:        0,
	}
}

func unixFloat(t time.Time) float64 {
	return float64(t.UnixMicro()) / 1e6
}

type envelope struct {
	Result any    `json:"result"`
	Total  *int   `json:"total,omitempty"`
	Next   *int   `json:"next,omitempty"`
	Time   timing `json:"time"`
}

func withPage(env *envelope, pg *page) {
	if pg == nil || pg.noTotal {
		return
	}
	total := pg.total
	env.Total = &total
	if pg.next > 0 {
		next := pg.next
		env.Next = &next
	}
}

// handleREST serves {client_endpoint}{method}[.json].
func (s *Server) handleREST(w http.ResponseWriter, r *http.Request, body []byte, base string, rec *Request) {
	wallStart := time.Now()
	name := strings.TrimPrefix(r.URL.Path, "/rest/")
	if strings.Contains(strings.Trim(name, "/"), "/") {
		// /rest/{user}/{code}/method is an incoming webhook; a connector
		// app cannot use one (contract §1.1) and the simulator has none.
		writeAPIError(w, errWebhookCredentials())
		return
	}
	name = strings.Trim(name, "/")
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".json"), ".xml")
	method := strings.ToLower(name)
	rec.RESTMethod = method

	params, authIn, perr := readParams(r, body)
	if perr != nil {
		writeAPIError(w, perr)
		return
	}
	rawAuth, _ := params.Get("auth")
	token := str(rawAuth)
	params.Delete("auth")
	rec.Params = plainParams(params)
	rec.AuthIn = authIn

	var events []pendingEvent
	s.mu.Lock()
	now := s.clock()
	tok, p, aerr := s.authenticateLocked(token, now)
	if aerr == nil && p.paymentRequired {
		aerr = errPaymentRequired(s.opts.PaymentRequiredStatus)
	}
	if aerr == nil && s.opts.LeakRate > 0 && s.opts.LeakBurst > 0 {
		// A batch counts as one request: only the HTTP request hits.
		if !p.bucket.hit(now, s.opts.LeakRate, s.opts.LeakBurst) {
			aerr = errQueryLimit()
		}
	}
	if aerr != nil {
		s.mu.Unlock()
		s.log.Info("rest call", "method", method, "status", aerr.status, "error", aerr.Code)
		writeAPIError(w, aerr)
		return
	}
	p.restCalls++
	c := &call{s: s, p: p, userID: tok.userID, scope: tok.scope, method: method, params: params, now: now, base: base, events: &events}
	result, pg, cerr := s.execLocked(c)
	s.mu.Unlock()

	s.dispatch(events)
	if cerr != nil {
		s.log.Info("rest call", "member_id", p.memberID, "method", method, "status", cerr.status, "error", cerr.Code)
		writeAPIError(w, cerr)
		return
	}
	env := envelope{Result: result, Time: s.timingFor(now, time.Since(wallStart))}
	withPage(&env, pg)
	s.log.Info("rest call", "member_id", p.memberID, "method", method, "status", http.StatusOK)
	writeJSON(w, http.StatusOK, env)
}

// execLocked runs c.method with c.params and records the Call.
func (s *Server) execLocked(c *call) (any, *page, *apiError) {
	result, pg, err := s.runLocked(c)
	rc := Call{
		Method:   c.method,
		MemberID: c.p.memberID,
		UserID:   c.userID,
		Params:   plainParams(c.params),
		InBatch:  c.inBatch,
		Status:   http.StatusOK,
		Time:     c.now,
	}
	if err != nil {
		rc.Status, rc.ErrorCode, rc.ErrorDescription = err.status, err.Code, err.Desc
	}
	s.calls = appendCapped(s.calls, rc, s.opts.MaxRecorded)
	return result, pg, err
}

func (s *Server) runLocked(c *call) (any, *page, *apiError) {
	spec, ok := s.methods[c.method]
	if !ok {
		return nil, nil, errMethodNotFound()
	}
	if c.inBatch && spec.noBatch {
		return nil, nil, errBatchMethodNotAllowed()
	}
	if spec.scope != "" && !hasScope(c.scope, spec.scope) {
		return nil, nil, errInsufficientScope()
	}
	if f := c.p.takeFailure(c.method); f != nil {
		return nil, nil, f
	}
	result, pg, err := spec.fn(c)
	if f := c.p.takeFailureAfter(c.method); f != nil && err == nil {
		return nil, nil, f
	}
	return result, pg, err
}

// hasScope checks a scope list; separators seen in the wild are "," and
// ", " and spaces (contract §1.3).
func hasScope(list, want string) bool {
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' })
	return slices.Contains(fields, want)
}

// methodTable lists the supported methods with the scope each needs.
func (s *Server) methodTable() map[string]methodSpec {
	m := map[string]methodSpec{
		"batch":      {fn: s.mBatch, noBatch: true},
		"app.info":   {fn: mAppInfo},
		"scope":      {fn: mScope},
		"event.bind": {fn: mEventBind}, "event.get": {fn: mEventGet}, "event.unbind": {fn: mEventUnbind},

		"placement.bind":   {scope: "placement", fn: mPlacementBind},
		"placement.get":    {scope: "placement", fn: mPlacementGet},
		"placement.unbind": {scope: "placement", fn: mPlacementUnbind},

		"imconnector.register":             {scope: "imconnector", fn: mConnectorRegister},
		"imconnector.unregister":           {scope: "imconnector", fn: mConnectorUnregister},
		"imconnector.activate":             {scope: "imconnector", fn: mConnectorActivate},
		"imconnector.connector.data.set":   {scope: "imconnector", fn: mConnectorDataSet},
		"imconnector.status":               {scope: "imconnector", fn: mConnectorStatus},
		"imconnector.list":                 {scope: "imconnector", fn: mConnectorList},
		"imconnector.set.error":            {scope: "imconnector", fn: mConnectorSetError},
		"imconnector.send.messages":        {scope: "imconnector", fn: mSendMessages},
		"imconnector.update.messages":      {scope: "imconnector", fn: mUpdateMessages},
		"imconnector.delete.messages":      {scope: "imconnector", fn: mDeleteMessages},
		"imconnector.send.status.delivery": {scope: "imconnector", fn: mStatusDelivery},
		"imconnector.send.status.reading":  {scope: "imconnector", fn: mStatusReading},
		"imconnector.chat.name.set":        {scope: "imconnector", fn: mChatNameSet},
		"imopenlines.config.list.get":      {scope: "imopenlines", fn: mOpenLinesList},
		"im.notify.system.add":             {scope: "im", fn: mNotify},
		"im.notify.personal.add":           {scope: "im", fn: mNotify},
		"im.message.add":                   {scope: "im", fn: mIMMessageAdd},
		"crm.duplicate.findbycomm":         {scope: "crm", fn: mFindByComm},
		"crm.contact.add":                  {scope: "crm", fn: entityAdd(kindContact)},
		"crm.contact.get":                  {scope: "crm", fn: entityGet(kindContact)},
		"crm.contact.update":               {scope: "crm", fn: entityUpdate(kindContact)},
		"crm.contact.list":                 {scope: "crm", fn: entityList(kindContact)},
		"crm.lead.add":                     {scope: "crm", fn: entityAdd(kindLead)},
		"crm.lead.get":                     {scope: "crm", fn: entityGet(kindLead)},
		"crm.lead.update":                  {scope: "crm", fn: entityUpdate(kindLead)},
		"crm.lead.list":                    {scope: "crm", fn: entityList(kindLead)},
		"crm.deal.add":                     {scope: "crm", fn: entityAdd(kindDeal)},
		"crm.deal.get":                     {scope: "crm", fn: entityGet(kindDeal)},
		"crm.deal.update":                  {scope: "crm", fn: entityUpdate(kindDeal)},
		"crm.deal.list":                    {scope: "crm", fn: entityList(kindDeal)},
		"crm.category.list":                {scope: "crm", fn: mCategoryList},
		"crm.status.list":                  {scope: "crm", fn: mStatusList},
		"crm.status.add":                   {scope: "crm", fn: mStatusAdd},
		"crm.timeline.comment.add":         {scope: "crm", fn: mTimelineCommentAdd},
		"crm.timeline.comment.list":        {scope: "crm", fn: mTimelineCommentList},
		"crm.activity.todo.add":            {scope: "crm", fn: mTodoAdd},
		"crm.deal.contact.items.get":       {scope: "crm", fn: mDealContactItemsGet},
		"user.current":                     {fn: mUserCurrent},
		"user.admin":                       {fn: mUserAdmin},
		"bizproc.robot.add":                {scope: "bizproc", fn: mRobotAdd},
		"bizproc.robot.update":             {scope: "bizproc", fn: mRobotUpdate},
		"bizproc.robot.delete":             {scope: "bizproc", fn: mRobotDelete},
		"bizproc.robot.list":               {scope: "bizproc", fn: mRobotList},
		"bizproc.event.send":               {scope: "bizproc", fn: mEventSend},
		"user.get":                         {scope: "user", fn: mUserGet},
		"department.get":                   {scope: "department", fn: mDepartmentGet},
		"imopenlines.config.get":           {scope: "imopenlines", fn: mOpenLinesConfigGet},
		"imopenlines.config.update":        {scope: "imopenlines", fn: mOpenLinesConfigUpdate},
	}
	return m
}

// listPage applies Bitrix24 pagination (fixed page of 50, start offset,
// start=-1 fast mode) to n items and returns the slice bounds.
func listPage(p *phpArray, n int) (from, to int, pg *page) {
	startRaw := param(p, "start")
	start := intval(startRaw)
	if str(startRaw) == "-1" {
		to = min(PageSize, n)
		return 0, to, &page{noTotal: true}
	}
	if start < 0 {
		start = 0
	}
	from = min(start, n)
	to = min(from+PageSize, n)
	pg = &page{total: n}
	if to < n {
		pg.next = to
	}
	return from, to, pg
}
