package bitrix24

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// callerRefusal words crm's refusal of a caller in Bitrix24's terms; our
// own failures pass as they are. An unknown portal and a wrong token get
// one answer, so a stranger cannot learn which portals use this gateway.
func callerRefusal(err error) error {
	if errors.Is(err, crm.ErrUnknownCaller) || errors.Is(err, crm.ErrBadCallerToken) {
		return fault.New(fault.Unauthorized, "unauthorized", "auth[member_id] and auth[application_token] do not name a portal this app is installed on")
	}
	return err
}

type eventJob struct {
	EventID string `json:"event_id"`
}

// ServeEvents handles POST /bitrix24/events. Bitrix24 never resends an
// event, so it is stored with its job before the answer, and the work is
// done from the queue.
func (s *Service) ServeEvents(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name := strings.ToUpper(form.Get("event"))
	if probe := form.Get(probeField); probe != "" && name == "" {
		s.answerProbe(w, probe) // verifyHandlers checking that this URL reaches us
		return
	}
	if name == "" {
		writeError(w, fault.New(fault.Malformed, "event_missing", "the body names no event"))
		return
	}
	data := DecodeForm(form)
	auth, _ := data["auth"].(map[string]any)
	memberID, _ := auth["member_id"].(string)
	appToken, _ := auth["application_token"].(string)
	in, err := s.inbox.Caller(r.Context(), Type, strings.ToLower(memberID), appToken)
	if err != nil {
		s.fail(w, r, callerRefusal(err))
		return
	}
	if in.State == store.IntegrationUninstalled {
		w.WriteHeader(http.StatusOK) // nothing to do for a removed app; do not make it retry
		return
	}
	// Tokens in the event are a user's; never store them with the event.
	delete(data, "auth")
	payload, _ := json.Marshal(data)
	ev := &store.CRMEvent{IntegrationID: in.ID, Kind: name, DedupKey: dedupKey(name, data, payload), Payload: string(payload)}
	if name == "ONAPPUNINSTALL" {
		clean := form.Get("data[CLEAN]") == "1"
		if err := s.uninstall(r.Context(), in, clean); err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.Info("bitrix24 app uninstalled", "integration_id", in.ID, "domain", in.Domain, "clean", clean)
		w.WriteHeader(http.StatusOK)
		return
	}
	err = s.inbox.Keep(r.Context(), ev, func(ev *store.CRMEvent) queue.NewJob {
		return queue.NewJob{Kind: JobEvent, WorkspaceID: in.WorkspaceID,
			Key: eventKey(in.ID, data), Payload: eventJob{EventID: ev.ID}, MaxAttempts: 30}
	})
	if err != nil {
		s.log.Error("bitrix24 event not stored", "integration_id", in.ID, "event", name, "err", err)
		writeError(w, fault.New(fault.Unavailable, "store_failed", "could not store the event"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}`))
}

// eventKey orders an event's job: per Open Lines chat for events about
// messages, so a reply that keeps failing holds back only its own chat,
// never the portal's other conversations; per portal for the rest.
func eventKey(integrationID string, data map[string]any) string {
	if d, ok := data["data"].(map[string]any); ok {
		if ms := list(d["MESSAGES"]); len(ms) > 0 {
			if chat := str(ms[0], "im", "chat_id"); chat != "" {
				return "b24event:" + integrationID + ":chat" + chat
			}
		}
	}
	return "b24event:" + integrationID
}

// dedupKey identifies an event so a duplicate delivery is stored once:
// operator messages by their Bitrix24 message ids, others by content.
func dedupKey(name string, data map[string]any, payload []byte) string {
	var ids []string
	if d, ok := data["data"].(map[string]any); ok {
		for _, m := range list(d["MESSAGES"]) {
			im, _ := m["im"].(map[string]any)
			if id, _ := im["message_id"].(string); id != "" {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) > 0 {
		sort.Strings(ids)
		return name + ":" + strings.Join(ids, ",")
	}
	sum := sha256.Sum256(payload)
	return name + ":" + hex.EncodeToString(sum[:16])
}

// list reads a decoded form value that is an array or an index-keyed map.
func list(v any) []map[string]any {
	switch x := v.(type) {
	case []any:
		var out []map[string]any
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if len(keys[i]) != len(keys[j]) {
				return len(keys[i]) < len(keys[j])
			}
			return keys[i] < keys[j]
		})
		var out []map[string]any
		for _, k := range keys {
			if m, ok := x[k].(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[p]
	}
	switch x := v.(type) {
	case string:
		return x
	case []any:
		if len(x) > 0 {
			s, _ := x[0].(string)
			return s
		}
	case map[string]any:
		if s, ok := x["0"].(string); ok {
			return s
		}
	}
	return ""
}

func (s *Service) handleEvent(ctx context.Context, j *queue.Job) error {
	var p eventJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	ev, err := s.store.GetCRMEvent(ctx, p.EventID)
	if err != nil {
		return queue.Permanent(err)
	}
	in, err := s.store.GetIntegration(ctx, store.All, ev.IntegrationID)
	if err != nil {
		return queue.Permanent(err)
	}
	if in.State == store.IntegrationUninstalled {
		return nil
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(ev.Payload), &data); err != nil {
		return queue.Permanent(err)
	}
	d, _ := data["data"].(map[string]any)
	switch ev.Kind {
	case "ONIMCONNECTORMESSAGEADD":
		return s.operatorMessages(ctx, j, in, d)
	case "ONIMCONNECTORMESSAGEUPDATE", "ONIMCONNECTORMESSAGEDELETE":
		return s.editUnsupported(ctx, in, d)
	case "ONIMCONNECTORLINEDELETE":
		line, _ := data["data"].(string)
		var n int64
		err := queue.Finish(ctx, s.store, j, func(st *store.Store) error {
			var err error
			n, err = st.DeleteBindingsByLine(ctx, in.ID, line)
			return err
		})
		s.log.Info("bitrix24 open line deleted", "integration_id", in.ID, "line", line, "bindings_removed", n, "err", err)
		return err
	case "ONIMCONNECTORSTATUSDELETE":
		return s.connectorRemoved(ctx, j, in, str(d, "connector"), str(d, "line"))
	case "ROBOT":
		return s.runRobot(ctx, in, data)
	}
	s.log.Debug("bitrix24 event ignored", "event", ev.Kind)
	return nil
}

// connectorRemoved drops the bindings of the line the connector was
// switched off on (only for our connector of that channel type), all in
// the commit that ends the event's job j.
func (s *Service) connectorRemoved(ctx context.Context, j *queue.Job, in *store.Integration, connector, line string) error {
	typ, ok := s.channelTypeOf(connector)
	if !ok {
		return nil
	}
	bs, err := s.store.ListBindings(ctx, in.ID)
	if err != nil {
		return err
	}
	var unbind []string
	for _, b := range bs {
		if b.Mode != ModeOpenLines || b.LineID != line {
			continue
		}
		ch, err := s.store.GetChannel(ctx, store.All, b.ChannelID)
		if err != nil || ch.Type != string(typ) {
			continue
		}
		unbind = append(unbind, b.ChannelID)
	}
	err = queue.Finish(ctx, s.store, j, func(st *store.Store) error {
		for _, channelID := range unbind {
			if _, err := st.DeleteBinding(ctx, in.ID, channelID); err != nil {
				return fmt.Errorf("bitrix24: unbind %s: %w", channelID, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, channelID := range unbind {
		s.log.Info("bitrix24 connector switched off on a line", "integration_id", in.ID, "line", line, "channel_id", channelID)
	}
	return nil
}
