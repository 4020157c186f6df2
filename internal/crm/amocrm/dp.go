package amocrm

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The digital pipeline action "Send a WhatsApp / Instagram message"
// (manifest dp.settings, dp.webhook_url = /amocrm/dp).
//
// amoCRM posts the action's run to the widget's webhook_url: the event
// (lead id, stage, pipeline, type, time), the action's settings as an
// admin saved them, the account's subdomain and id (contract: Kommo's
// "Widgets in Digital Pipeline"). The call carries no signature, and the
// manifest's address is the same for every account, so anyone who knows
// an account id could post one. The action's settings are the only thing
// amoCRM repeats from the account's side: the widget's dpSettings callback
// fills the hidden "key" setting with the account's key, which it fetches
// with a disposable token (POST /amocrm/widget/dp-key, admins only), and
// a run whose key is not the account's is refused with 401, nothing kept.
//
// The run is answered at once and done from the queue: the lead's
// customer (the one linked to it, else its contacts' first phone) gets the
// text or template, through SendAsManager as the account's automation.

// JobDP sends one digital pipeline run's message.
const JobDP = "amocrm.dp"

const (
	// dpMaxBody caps a run's body: an event and a few settings.
	dpMaxBody = 64 << 10
	// dpKeySetting is the action's hidden setting carrying the key.
	dpKeySetting = "key"
	// linkDP ties a run (its crm_events id) to the message it sent, or to
	// "note" when it explained on the lead why it sent none: a retry of
	// the job finds it and does nothing again.
	linkDP = "dp_run"
	// dpElementLead is amoCRM's element_type of a lead.
	dpElementLead = 2
)

// dpTypes are the event types that run the action: a lead added to the
// stage (1), moved into it (14) or within the action's stages (15).
var dpTypes = []int{1, 14, 15}

// dpRun is what the job needs of a run; the key is not kept.
type dpRun struct {
	LeadID     int               `json:"lead_id"`
	PipelineID int               `json:"pipeline_id"`
	StatusID   int               `json:"status_id"`
	Type       int               `json:"type"`
	Time       int64             `json:"time"`
	Settings   map[string]string `json:"settings"`
}

type dpJob struct {
	EventID string `json:"event_id"`
}

// dpCall is a run as posted.
type dpCall struct {
	dpRun
	AccountID   string
	Key         string
	ElementType int
	Direction   string
}

// DPKey is the account's digital pipeline key: an HMAC of the
// integration under the gateway's session key, so it needs no storage and
// changes when the account is connected anew.
func (s *Service) DPKey(in *store.Integration) string {
	m := hmac.New(sha256.New, s.cfg.SessionKey)
	m.Write([]byte("amocrm.dp|" + in.ID + "|" + in.ExternalID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:32]
}

// ServeDPKey is POST /amocrm/widget/dp-key: the widget's dpSettings asks,
// with a disposable token (X-Auth-Token), for the key it puts into the
// action's hidden setting. Only an account admin gets it: the key lets its
// holder send the account's customers any text.
func (s *Service) ServeDPKey(w http.ResponseWriter, r *http.Request) {
	claims, in, ok := s.widgetCall(w, r)
	if !ok {
		return
	}
	if !claims.IsAdmin {
		s.fail(w, r, fault.New(fault.Forbidden, "dp_admin_only", "only an account admin sets up digital pipeline actions"))
		return
	}
	s.writeWidgetJSON(w, map[string]string{"key": s.DPKey(in)})
}

// ServeDP is POST /amocrm/dp, the action's webhook_url. A run without the
// account's key is a 401 and changes nothing; a run of another kind (a
// customer, a move out of the stage) is answered and ignored; a run is
// kept once however often amoCRM delivers it.
func (s *Service) ServeDP(w http.ResponseWriter, r *http.Request) {
	if err := s.configured(); err != nil {
		s.fail(w, r, err)
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, dpMaxBody))
	if err != nil {
		s.fail(w, r, fault.New(fault.TooLarge, "body_too_large", "the digital pipeline call is larger than 64 KiB"))
		return
	}
	call, err := parseDPCall(r.Header.Get("Content-Type"), raw)
	if err != nil {
		s.fail(w, r, fault.New(fault.Malformed, "dp_invalid", err.Error()))
		return
	}
	refused := fault.New(fault.Unauthorized, "dp_key_invalid",
		"the action does not carry this account's Switchboard key; open the action in the digital pipeline and save it again")
	in, err := s.store.IntegrationByExternal(r.Context(), Type, call.AccountID)
	if errors.Is(err, store.ErrNotFound) || err == nil && in.State == store.IntegrationUninstalled {
		s.log.Warn("amocrm: digital pipeline call for an unknown account", "account_id", call.AccountID)
		s.fail(w, r, refused)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !crm.SameToken(call.Key, s.DPKey(in)) {
		s.log.Warn("amocrm: digital pipeline call with a wrong key", "integration_id", in.ID)
		s.fail(w, r, refused)
		return
	}
	if call.ElementType != dpElementLead || call.LeadID <= 0 || !slices.Contains(dpTypes, call.Type) || call.Direction == "went_from_trigger" {
		writeDPAnswer(w, "ignored")
		return
	}
	payload, err := json.Marshal(call.dpRun)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ev := &store.CRMEvent{IntegrationID: in.ID, Kind: "DP", DedupKey: "DP:" + call.dedupKey(), Payload: string(payload)}
	err = crm.NewInbox(s.store, s.notify).Keep(r.Context(), ev, func(ev *store.CRMEvent) queue.NewJob {
		return queue.NewJob{Kind: JobDP, WorkspaceID: in.WorkspaceID, Key: "amodp:" + in.ID + ":" + strconv.Itoa(call.LeadID),
			Payload: dpJob{EventID: ev.ID}, MaxAttempts: 20}
	})
	if err != nil {
		s.log.Error("amocrm: digital pipeline run not stored", "integration_id", in.ID, "err", err)
		s.fail(w, r, fault.New(fault.Unavailable, "store_failed", "could not store the run"))
		return
	}
	writeDPAnswer(w, "ok")
}

func writeDPAnswer(w http.ResponseWriter, status string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":%q}`, status)
}

// dedupKey names a run: amoCRM gives it no id, so the lead, the stage,
// the event and its time and the action's settings (two actions of one
// stage are two runs; a redelivery is the same one).
func (c *dpCall) dedupKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d|%d|%d|%d|%d", c.LeadID, c.PipelineID, c.StatusID, c.Type, c.Time)
	keys := make([]string, 0, len(c.Settings))
	for k := range c.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "|%s=%s", k, c.Settings[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// parseDPCall reads a run: form-encoded with PHP-style keys, as amoCRM's
// other webhooks are (event[data][id]=…), or JSON as the documentation
// shows it; numbers may come as strings either way.
func parseDPCall(contentType string, raw []byte) (*dpCall, error) {
	ct, _, _ := mime.ParseMediaType(contentType)
	c := &dpCall{}
	c.Settings = map[string]string{}
	// nums are the numeric fields as text, by their form names.
	nums := map[string]string{}
	if ct == "application/json" || ct == "" && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		var env struct {
			Event struct {
				Type json.RawMessage `json:"type"`
				Data struct {
					ID          json.RawMessage `json:"id"`
					ElementType json.RawMessage `json:"element_type"`
					StatusID    json.RawMessage `json:"status_id"`
					PipelineID  json.RawMessage `json:"pipeline_id"`
					Direction   string          `json:"direction_of_movement"`
				} `json:"data"`
				Time json.RawMessage `json:"time"`
			} `json:"event"`
			Action struct {
				Settings struct {
					Widget struct {
						Settings map[string]any `json:"settings"`
					} `json:"widget"`
				} `json:"settings"`
			} `json:"action"`
			AccountID json.RawMessage `json:"account_id"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			return nil, fmt.Errorf("the digital pipeline call is not JSON: %v", err)
		}
		d := env.Event.Data
		c.Direction = d.Direction
		nums["account_id"], nums["event[time]"], nums["event[type]"] = unquote(env.AccountID), unquote(env.Event.Time), unquote(env.Event.Type)
		nums["event[data][id]"], nums["event[data][element_type]"] = unquote(d.ID), unquote(d.ElementType)
		nums["event[data][status_id]"], nums["event[data][pipeline_id]"] = unquote(d.StatusID), unquote(d.PipelineID)
		for k, v := range env.Action.Settings.Widget.Settings {
			switch t := v.(type) {
			case string:
				c.Settings[k] = t
			case nil:
			default:
				b, err := json.Marshal(t)
				if err != nil {
					return nil, fmt.Errorf("setting %s: %v", k, err)
				}
				c.Settings[k] = string(b)
			}
		}
	} else {
		f, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, fmt.Errorf("the digital pipeline call is not a form: %v", err)
		}
		const prefix = "action[settings][widget][settings]["
		for k, vs := range f {
			if name, ok := strings.CutPrefix(k, prefix); ok && strings.HasSuffix(name, "]") && len(vs) > 0 {
				c.Settings[strings.TrimSuffix(name, "]")] = vs[0]
			}
		}
		c.Direction = f.Get("event[data][direction_of_movement]")
		for _, k := range []string{"account_id", "event[time]", "event[type]", "event[data][id]", "event[data][element_type]",
			"event[data][status_id]", "event[data][pipeline_id]"} {
			nums[k] = strings.TrimSpace(f.Get(k))
		}
	}
	for k, dst := range map[string]*int{"event[type]": &c.Type, "event[data][id]": &c.LeadID, "event[data][element_type]": &c.ElementType,
		"event[data][status_id]": &c.StatusID, "event[data][pipeline_id]": &c.PipelineID} {
		if nums[k] == "" {
			continue
		}
		n, err := strconv.Atoi(nums[k])
		if err != nil {
			return nil, fmt.Errorf("%s is not a number", k)
		}
		*dst = n
	}
	if v := nums["event[time]"]; v != "" {
		t, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errors.New("event[time] is not a number")
		}
		c.Time = t
	}
	c.AccountID = nums["account_id"]
	if id, err := strconv.Atoi(c.AccountID); err != nil || id <= 0 {
		return nil, errors.New("account_id is missing or not a number")
	}
	c.Key = c.Settings[dpKeySetting]
	delete(c.Settings, dpKeySetting)
	return c, nil
}

// unquote is a JSON number or string as text ("" for null or absent).
func unquote(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// dpTexts are the notes a run leaves on its lead when it sends nothing.
var dpTexts = map[string]map[string]string{
	"ru": {
		"failed":      "Switchboard: сообщение из цифровой воронки не отправлено. %s",
		"no_customer": "У сделки нет клиента WhatsApp или Instagram и нет контакта с телефоном.",
		"no_text":     "В действии не указаны ни текст, ни шаблон.",
	},
	"en": {
		"failed":      "Switchboard: the digital pipeline message was not sent. %s",
		"no_customer": "The lead has no WhatsApp or Instagram customer and no contact with a phone number.",
		"no_text":     "The action has neither a text nor a template.",
	},
}

// handleDP sends a run's message, once: a run that sent (or explained
// why not) is linked, and a retry finds the link.
func (s *Service) handleDP(ctx context.Context, j *queue.Job) error {
	var p dpJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	ev, err := s.store.GetCRMEvent(ctx, p.EventID)
	if err != nil {
		return queue.Permanent(err)
	}
	in, err := s.store.GetIntegration(ctx, store.All, ev.IntegrationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case in.State == store.IntegrationUninstalled:
		return nil
	case !routing.Live(in):
		return queue.RetryAfter(10*time.Minute, routing.ErrParked)
	}
	if _, err := s.store.RemoteOf(ctx, in.ID, linkDP, ev.ID); err == nil {
		return nil // sent, or explained, before
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var run dpRun
	if err := json.Unmarshal([]byte(ev.Payload), &run); err != nil {
		return queue.Permanent(err)
	}
	l := lang(in)
	get := func(k string) string { return strings.TrimSpace(run.Settings[k]) }
	// The text goes when the messenger takes free text; the template when
	// there is no text, or the window for it is closed.
	text, tpl := get("text"), crm.AutomationTemplate(get("template"), get("template_language"), get("template_params"), l)
	if text == "" && tpl == nil {
		return s.dpNote(ctx, j, in, ev.ID, run.LeadID, dpTexts[l]["no_text"])
	}
	rc, err := s.dpRecipient(ctx, in, &run)
	if fe := fault.As(err); fe != nil && fe.Code == crm.CodeNoChannel {
		return s.dpNote(ctx, j, in, ev.ID, run.LeadID, fe.Message)
	}
	if err != nil {
		return err
	}
	if rc == nil {
		return s.dpNote(ctx, j, in, ev.ID, run.LeadID, dpTexts[l]["no_customer"])
	}
	ch := rc.ch
	if tpl != nil {
		for i := range tpl.Params {
			tpl.Params[i] = fillName(tpl.Params[i], rc.name)
		}
	}
	b, err := s.store.BindingOf(ctx, in.ID, ch.ID)
	if errors.Is(err, store.ErrNotFound) {
		b = nil // a channel named but not bound: nothing to mirror into
	} else if err != nil {
		return err
	}
	send := func(req messaging.SendRequest) error {
		req.To = rc.to
		_, err := s.SendAsManager(ctx, in, "", ch.ID, req, func(tx *gorm.DB, m *store.Message) error {
			if b != nil && rc.contactID != 0 {
				// A customer found by the lead's contact's phone is that
				// lead's: its messages, this one first, are noted there
				// rather than on a new lead (a link made earlier wins).
				if err := store.PutLink(tx, in.ID, linkContact, m.ContactID, strconv.Itoa(rc.contactID)); err != nil {
					return err
				}
				if err := store.PutLink(tx, in.ID, linkLead, b.ID+":"+m.ContactID, strconv.Itoa(run.LeadID)); err != nil {
					return err
				}
			}
			if err := store.PutLink(tx, in.ID, linkDP, ev.ID, m.ID); err != nil {
				return err
			}
			// The job ends in the commit of the message it sends.
			return queue.Done(tx, j)
		})
		return err
	}
	if text != "" {
		err = send(messaging.SendRequest{Text: fillName(text, rc.name)})
		if fe := fault.As(err); fe != nil && fe.Code == "window_closed" && tpl != nil {
			err = send(messaging.SendRequest{Template: tpl})
		}
	} else {
		err = send(messaging.SendRequest{Template: tpl})
	}
	if fe := fault.As(err); fe != nil {
		reason := fe.Message
		if fe.Code == "window_closed" {
			reason = crm.WindowClosed(l, ch.Type)
		}
		return s.dpNote(ctx, j, in, ev.ID, run.LeadID, reason)
	}
	return err
}

// namePlaceholder in an action's text or template parameters is the
// customer's name (amoCRM fills in nothing in a widget's settings).
const namePlaceholder = "{{name}}"

// fillName puts the customer's name (one line) for the placeholder.
func fillName(text, name string) string {
	return strings.ReplaceAll(text, namePlaceholder, cleanLine(name))
}

// dpTarget is whom a run writes to: the address, the channel, the
// customer's name and, when found by phone, the amoCRM contact.
type dpTarget struct {
	to        string
	ch        *store.Channel
	name      string
	contactID int
}

// dpRecipient finds whom a run writes to: the customer linked to the lead
// (on the named channel, when one is named), else the first phone of the
// lead's contacts, main contact first, on the named channel or the first
// bound one. nil and no error: nobody to write to.
func (s *Service) dpRecipient(ctx context.Context, in *store.Integration, run *dpRun) (*dpTarget, error) {
	named := strings.TrimSpace(run.Settings["channel"])
	var want *store.Channel
	if named != "" {
		ch, err := crm.AutomationChannel(ctx, s.store, in, named)
		if err != nil {
			return nil, err
		}
		want = ch
	}
	locals, err := s.store.LocalIDsByRemote(ctx, in.ID, linkLead, strconv.Itoa(run.LeadID))
	if err != nil {
		return nil, err
	}
	slices.Sort(locals)
	for _, local := range locals {
		bindingID, contactID, ok := strings.Cut(local, ":")
		if !ok {
			continue
		}
		b, err := s.store.GetBinding(ctx, bindingID)
		if errors.Is(err, store.ErrNotFound) {
			continue // unbound since
		}
		if err != nil {
			return nil, err
		}
		if b.IntegrationID != in.ID || want != nil && b.ChannelID != want.ID {
			continue
		}
		ch, err := s.store.GetChannel(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, b.ChannelID)
		if err != nil {
			return nil, err
		}
		ct, err := s.store.ContactByID(ctx, contactID)
		if err != nil {
			return nil, err
		}
		if to := cmp.Or(ct.ExternalID, ct.Phone); to != "" {
			return &dpTarget{to: to, ch: ch, name: cmp.Or(ct.Name, ct.Username)}, nil
		}
	}
	ch := want
	if ch == nil {
		if ch, err = crm.AutomationChannel(ctx, s.store, in, ""); err != nil {
			return nil, err
		}
	}
	lead, found, err := s.API(in).GetLead(ctx, run.LeadID, true)
	if err != nil {
		return nil, Classify(err)
	}
	if !found {
		return nil, nil
	}
	contacts := slices.Clone(lead.Embedded.Contacts)
	slices.SortStableFunc(contacts, func(a, b EntityLink) int {
		switch {
		case a.IsMain == b.IsMain:
			return 0
		case a.IsMain:
			return -1
		}
		return 1
	})
	for _, c := range contacts {
		got, found, err := s.API(in).GetContact(ctx, c.ID, false)
		if err != nil {
			return nil, Classify(err)
		}
		if !found {
			continue
		}
		for _, p := range got.Values("PHONE") {
			if strings.TrimSpace(p) != "" {
				return &dpTarget{to: p, ch: ch, name: cmp.Or(got.Name, strings.TrimSpace(got.FirstName+" "+got.LastName)), contactID: c.ID}, nil
			}
		}
	}
	return nil, nil
}

// dpNote writes on the lead why the run sent nothing, and links the run
// so that it is done. A lead deleted since has nobody to tell.
//
// The run's job j ends in the commit of the link that says so.
func (s *Service) dpNote(ctx context.Context, j *queue.Job, in *store.Integration, eventID string, leadID int, why string) error {
	text := fmt.Sprintf(dpTexts[lang(in)]["failed"], why)
	s.log.Info("amocrm: digital pipeline run sent nothing", "integration_id", in.ID, "lead_id", leadID, "reason", why)
	_, err := s.API(in).AddNotes(ctx, "leads", []NoteInput{{EntityID: leadID, NoteType: NoteCommon, Params: NoteParams{Text: SplitText(text, NoteTextLimit)[0]}}})
	if err != nil && !isNotFoundItem(err) {
		return Classify(err)
	}
	return s.store.Tx(ctx, func(tx *gorm.DB) error {
		if err := store.PutLink(tx, in.ID, linkDP, eventID, "note"); err != nil {
			return err
		}
		return queue.Done(tx, j)
	})
}

// isNotFoundItem says a refused note named its lead as not found.
func isNotFoundItem(err error) bool {
	for _, errs := range ItemErrors(err) {
		for _, fe := range errs {
			if fe.Code == "NotFound" {
				return true
			}
		}
	}
	return false
}
