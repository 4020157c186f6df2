package bitrix24

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// RobotCode is our automation rule ("Send a WhatsApp/Instagram message").
const RobotCode = "switchboard_send"

// robotDefinition is what bizproc.robot.add registers.
func (s *Service) robotDefinition(authUser string) map[string]any {
	prop := func(ru, en, typ string, required bool) map[string]any {
		p := map[string]any{"Name": map[string]string{"ru": ru, "en": en}, "Type": typ}
		if required {
			p["Required"] = "Y"
		}
		return p
	}
	def := map[string]any{
		"CODE":             RobotCode,
		"HANDLER":          s.url("/bitrix24/robot"),
		"NAME":             map[string]string{"ru": "Отправить сообщение WhatsApp/Instagram", "en": "Send a WhatsApp/Instagram message"},
		"USE_SUBSCRIPTION": "Y",
		"PROPERTIES": map[string]any{
			"phone":             prop("Телефон или ID клиента", "Phone or customer id", "string", true),
			"text":              prop("Текст", "Text", "text", false),
			"template":          prop("Шаблон WhatsApp (если окно 24 ч закрыто)", "WhatsApp template (when the 24 h window is closed)", "string", false),
			"template_language": prop("Язык шаблона", "Template language", "string", false),
			"template_params":   prop("Параметры шаблона через запятую", "Template parameters, comma-separated", "string", false),
			"channel":           prop("Канал (ID, phone_number_id или номер; пусто — первый подключённый)", "Channel (id, phone_number_id or number; empty: the first bound one)", "string", false),
		},
		"RETURN_PROPERTIES": map[string]any{
			"message_id": prop("ID сообщения", "Message id", "string", false),
			"error":      prop("Ошибка", "Error", "string", false),
		},
	}
	if authUser != "" {
		def["AUTH_USER_ID"] = authUser
	}
	return def
}

// ServeRobot receives an automation rule's run; like every Bitrix24 event
// it is checked, stored and answered at once, and done from the queue.
func (s *Service) ServeRobot(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := DecodeForm(form)
	memberID, appToken := str(data, "auth", "member_id"), str(data, "auth", "application_token")
	in, err := s.inbox.Caller(r.Context(), Type, strings.ToLower(memberID), appToken)
	if err != nil {
		s.fail(w, r, callerRefusal(err))
		return
	}
	token := str(data, "event_token")
	if token == "" || str(data, "code") != RobotCode {
		writeError(w, fault.New(fault.Malformed, "robot_invalid", "event_token and our robot code are required"))
		return
	}
	delete(data, "auth")
	payload, _ := json.Marshal(data)
	ev := &store.CRMEvent{IntegrationID: in.ID, Kind: "ROBOT", DedupKey: "ROBOT:" + token, Payload: string(payload)}
	err = s.inbox.Keep(r.Context(), ev, func(ev *store.CRMEvent) queue.NewJob {
		return queue.NewJob{Kind: JobEvent, WorkspaceID: in.WorkspaceID, Key: "b24robot:" + ev.ID,
			Payload: eventJob{EventID: ev.ID}, MaxAttempts: 20}
	})
	if err != nil {
		s.log.Error("bitrix24 robot run not stored", "integration_id", in.ID, "err", err)
		writeError(w, fault.New(fault.Unavailable, "store_failed", "could not store the robot run"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}`))
}

// runRobot sends the robot's message and reports the outcome to the
// business process.
func (s *Service) runRobot(ctx context.Context, in *store.Integration, data map[string]any) error {
	props, _ := data["properties"].(map[string]any)
	get := func(k string) string { s, _ := props[k].(string); return strings.TrimSpace(s) }
	token := str(data, "event_token")
	answer := func(messageID, errText string) error {
		err := s.client.Call(ctx, in.ID, "bizproc.event.send", map[string]any{"EVENT_TOKEN": token,
			"RETURN_VALUES": map[string]any{"message_id": messageID, "error": errText}, "LOG_MESSAGE": cmp.Or(errText, "Switchboard: "+messageID)}, nil)
		var ae *APIError
		if errors.As(err, &ae) && strings.EqualFold(ae.Code, "ACCESS_DENIED") {
			return nil // the rule does not wait for an answer, or it was answered
		}
		return s.classify(err)
	}
	ch, err := crm.AutomationChannel(ctx, s.store, in, get("channel"))
	if fe := (*fault.Error)(nil); errors.As(err, &fe) && fe.Code == crm.CodeNoChannel {
		return answer("", fe.Message)
	}
	if err != nil {
		return err
	}
	req := messaging.SendRequest{To: get("phone"), Text: get("text")}
	if t := crm.AutomationTemplate(get("template"), get("template_language"), get("template_params"), cmp.Or(in.Language, "ru")); t != nil {
		req.Template, req.Text = t, ""
	}
	req.OnStored = s.crmSendStored(in, "")
	req.Author = &store.MessageAuthor{Kind: store.AuthorRobot, UserID: in.Type}
	m, err := s.msg.Send(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, ch.ID, req)
	var me *fault.Error
	if errors.As(err, &me) {
		msg := me.Message
		if me.Code == "window_closed" {
			msg = crm.WindowClosed(shownLang(in.Language), ch.Type)
		}
		return answer("", msg)
	}
	if err != nil {
		return err
	}
	return answer(m.ID, "")
}
