package metasim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// customerWindow is how long a user message lets the business send
// free-form messages (contract §2.6).
const customerWindow = 24 * time.Hour

type waSendRequest struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Status           string `json:"status"`     // mark-read form
	MessageID        string `json:"message_id"` // mark-read form
	TypingIndicator  *struct {
		Type string `json:"type"`
	} `json:"typing_indicator"`
	Context *struct {
		MessageID string `json:"message_id"`
	} `json:"context"`
	BizOpaqueCallbackData string `json:"biz_opaque_callback_data"`

	Text *struct {
		Body       string `json:"body"`
		PreviewURL bool   `json:"preview_url"`
	} `json:"text"`
	Image       *waSendMedia       `json:"image"`
	Audio       *waSendMedia       `json:"audio"`
	Video       *waSendMedia       `json:"video"`
	Document    *waSendMedia       `json:"document"`
	Sticker     *waSendMedia       `json:"sticker"`
	Template    *waSendTemplate    `json:"template"`
	Reaction    *waSendReaction    `json:"reaction"`
	Interactive *waSendInteractive `json:"interactive"`
	Location    *struct {
		Latitude  *float64 `json:"latitude"`
		Longitude *float64 `json:"longitude"`
	} `json:"location"`
	Contacts []json.RawMessage `json:"contacts"`
}

type waSendMedia struct {
	ID       string `json:"id"`
	Link     string `json:"link"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

type waSendTemplate struct {
	Name     string `json:"name"`
	Language *struct {
		Code   string `json:"code"`
		Policy string `json:"policy"`
	} `json:"language"`
	Components []struct {
		Type       string                       `json:"type"`
		SubType    string                       `json:"sub_type"`
		Index      json.RawMessage              `json:"index"`
		Parameters []map[string]json.RawMessage `json:"parameters"`
	} `json:"components"`
}

type waSendReaction struct {
	MessageID string `json:"message_id"`
	Emoji     string `json:"emoji"` // empty removes the reaction
}

type waSendInteractive struct {
	Type   string `json:"type"`
	Header *struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"header"`
	Body *struct {
		Text string `json:"text"`
	} `json:"body"`
	Footer *struct {
		Text string `json:"text"`
	} `json:"footer"`
	Action *struct {
		Button  string `json:"button"`
		Buttons []struct {
			Type  string `json:"type"`
			Reply struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			} `json:"reply"`
		} `json:"buttons"`
		Sections []struct {
			Title string `json:"title"`
			Rows  []struct {
				ID          string `json:"id"`
				Title       string `json:"title"`
				Description string `json:"description"`
			} `json:"rows"`
		} `json:"sections"`
	} `json:"action"`
}

type waSendResponse struct {
	MessagingProduct string          `json:"messaging_product"`
	Contacts         []waSendContact `json:"contacts"`
	Messages         []waSendMessage `json:"messages"`
}

type waSendContact struct {
	Input string `json:"input"`
	WaID  string `json:"wa_id"`
}

type waSendMessage struct {
	ID            string `json:"id"`
	MessageStatus string `json:"message_status,omitempty"`
}

func (s *Server) handleWASend(w http.ResponseWriter, num *waNumber, body []byte) {
	var req waSendRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeGraphError(w, errWAInvalidParam("Request body is not valid JSON for this endpoint: "+err.Error()))
		return
	}
	if req.MessagingProduct != "whatsapp" {
		writeGraphError(w, errWAInvalidParam("The parameter messaging_product is required and must be 'whatsapp'."))
		return
	}
	if req.Status != "" {
		s.handleWAMarkRead(w, num, &req)
		return
	}
	waID, ok := normalizeWaID(req.To)
	if !ok {
		writeGraphError(w, errWAInvalidParam("Parameter 'to' is not a valid WhatsApp phone number"))
		return
	}
	if req.RecipientType != "" && req.RecipientType != "individual" {
		writeGraphError(w, errWAInvalidParam(fmt.Sprintf("Parameter 'recipient_type' must be 'individual', got %q", req.RecipientType)))
		return
	}
	typ := req.Type
	if typ == "" {
		typ = "text" // Cloud API defaults the type to text
	}
	if d := s.validateWASend(num, typ, &req); d != "" {
		writeGraphError(w, errWAInvalidParam(d))
		return
	}
	category := "service"
	if typ == "template" {
		approved, gerr := s.approvedTemplate(num.wabaID, req.Template)
		if gerr != nil {
			writeGraphError(w, gerr)
			return
		}
		category = strings.ToLower(approved.Category)
	}

	now := s.clock()
	s.mu.Lock()
	if tps := s.opts.ThroughputPerSecond; tps > 0 {
		b := s.throughput[num.id]
		if b == nil {
			b = &bucket{}
			s.throughput[num.id] = b
		}
		if !b.take(now, float64(tps), tps) {
			s.mu.Unlock()
			writeGraphError(w, errThroughput())
			return
		}
	}
	if pl := s.opts.PairLimit; !pl.Disabled {
		key := pairKey{num.id, waID}
		b := s.pairs[key]
		if b == nil {
			b = &bucket{}
			s.pairs[key] = b
		}
		if !b.take(now, 1/pl.Interval.Seconds(), pl.Burst) {
			s.mu.Unlock()
			writeGraphError(w, errPairRateLimit())
			return
		}
	}
	last, seen := s.waLastIn[pairKey{num.id, waID}]
	sync131047 := s.sync131047
	s.mu.Unlock()

	template := typ == "template"
	outside := !template && (!seen || now.Sub(last) >= customerWindow)
	if outside && sync131047 {
		writeGraphError(w, errReengagement())
		return
	}

	wamid := NewWAMID(waID)
	resp := waSendResponse{
		MessagingProduct: "whatsapp",
		Contacts:         []waSendContact{{Input: req.To, WaID: waID}},
		Messages:         []waSendMessage{{ID: wamid}},
	}
	if template {
		resp.Messages[0].MessageStatus = "accepted"
	}
	// Scheduled before answering: Meta's statuses can overtake the send
	// response, and Wait must see the work once the client has its answer.
	s.scheduleWAStatuses(outbound{
		num:       num,
		wamid:     wamid,
		recipient: waID,
		category:  category,
		reaction:  typ == "reaction",
		failed:    outside,
		bizOpaque: req.BizOpaqueCallbackData,
	})
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleWAMarkRead(w http.ResponseWriter, num *waNumber, req *waSendRequest) {
	switch {
	case req.Status != "read":
		writeGraphError(w, errWAInvalidParam(fmt.Sprintf("Parameter 'status' must be 'read', got %q", req.Status)))
	case req.MessageID == "":
		writeGraphError(w, errWAInvalidParam("Parameter 'message_id' is required when marking a message as read"))
	case !strings.HasPrefix(req.MessageID, "wamid."):
		writeGraphError(w, errWAInvalidParam(fmt.Sprintf("Parameter 'message_id' is not a WhatsApp message id: %q", req.MessageID)))
	case req.TypingIndicator != nil && req.TypingIndicator.Type != "text":
		writeGraphError(w, errWAInvalidParam("Parameter 'typing_indicator.type' must be 'text'"))
	default:
		s.mu.Lock()
		s.readMarks = appendCapped(s.readMarks, ReadMark{PhoneNumberID: num.id, MessageID: req.MessageID, At: s.clock()}, s.opts.MaxRecorded)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	}
}

// normalizeWaID turns what a client put in "to" into a wa_id: digits only,
// an optional leading '+', and the usual human punctuation.
func normalizeWaID(to string) (string, bool) {
	to = strings.TrimSpace(to)
	to = strings.TrimPrefix(to, "+")
	var b strings.Builder
	for _, r := range to {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", false
		}
	}
	d := b.String()
	// E.164 allows at most 15 digits; anything under 8 is not a mobile number.
	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return "", false
	}
	return d, true
}

// validateWASend checks the per-type object and returns error details for
// the first problem, or "".
func (s *Server) validateWASend(num *waNumber, typ string, req *waSendRequest) string {
	if req.Context != nil && req.Context.MessageID == "" {
		return "Parameter 'context.message_id' is required when 'context' is set"
	}
	switch typ {
	case "text":
		if req.Text == nil || req.Text.Body == "" {
			return "Parameter 'text.body' is required"
		}
		if n := utf8.RuneCountInString(req.Text.Body); n > 4096 {
			return fmt.Sprintf("Param text['body'] must be at most 4096 characters long, got %d", n)
		}
	case "image":
		return s.validateMedia(num, typ, req.Image)
	case "audio":
		return s.validateMedia(num, typ, req.Audio)
	case "video":
		return s.validateMedia(num, typ, req.Video)
	case "document":
		return s.validateMedia(num, typ, req.Document)
	case "sticker":
		return s.validateMedia(num, typ, req.Sticker)
	case "template":
		return validateTemplate(req.Template)
	case "reaction":
		if req.Reaction == nil || req.Reaction.MessageID == "" {
			return "Parameter 'reaction.message_id' is required"
		}
	case "interactive":
		return validateInteractive(req.Interactive)
	case "location":
		if req.Location == nil || req.Location.Latitude == nil || req.Location.Longitude == nil {
			return "Parameters 'location.latitude' and 'location.longitude' are required"
		}
	case "contacts":
		if len(req.Contacts) == 0 {
			return "Parameter 'contacts' must be a non-empty array"
		}
	default:
		return fmt.Sprintf("Parameter 'type' has an unsupported value %q", typ)
	}
	return ""
}

func (s *Server) validateMedia(num *waNumber, typ string, m *waSendMedia) string {
	if m == nil {
		return fmt.Sprintf("Parameter '%s' is required for type '%s'", typ, typ)
	}
	switch {
	case m.ID != "" && m.Link != "":
		return fmt.Sprintf("Param %s must have either 'id' or 'link', not both", typ)
	case m.ID == "" && m.Link == "":
		return fmt.Sprintf("Param %s must have 'id' or 'link'", typ)
	case m.ID != "":
		if !s.mediaUsableBy(m.ID, num) {
			return fmt.Sprintf("Param %s['id'] is not a valid media id: %s", typ, m.ID)
		}
	default:
		u, err := url.Parse(m.Link)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Sprintf("Param %s['link'] must be an absolute http(s) URL", typ)
		}
	}
	if m.Caption != "" {
		if typ != "image" && typ != "video" && typ != "document" {
			return fmt.Sprintf("Param %s['caption'] is not allowed for type '%s'", typ, typ)
		}
		if utf8.RuneCountInString(m.Caption) > 1024 {
			return fmt.Sprintf("Param %s['caption'] must be at most 1024 characters long", typ)
		}
	}
	if m.Filename != "" && typ != "document" {
		return fmt.Sprintf("Param %s['filename'] is only allowed for documents", typ)
	}
	return ""
}

func validateTemplate(t *waSendTemplate) string {
	switch {
	case t == nil:
		return "Parameter 'template' is required for type 'template'"
	case t.Name == "":
		return "Parameter 'template.name' is required"
	case t.Language == nil || t.Language.Code == "":
		return "Parameter 'template.language.code' is required"
	}
	for i, c := range t.Components {
		switch c.Type {
		case "header", "body", "footer":
		case "button":
			if c.SubType == "" {
				return fmt.Sprintf("Parameter 'template.components[%d].sub_type' is required for buttons", i)
			}
			// A common client bug: Meta wants the index as a string ("0").
			if len(c.Index) == 0 || c.Index[0] != '"' {
				return fmt.Sprintf("Parameter 'template.components[%d].index' must be a string", i)
			}
		default:
			return fmt.Sprintf("Parameter 'template.components[%d].type' has an unsupported value %q", i, c.Type)
		}
		for j, p := range c.Parameters {
			var pt string
			if raw, ok := p["type"]; !ok || json.Unmarshal(raw, &pt) != nil || pt == "" {
				return fmt.Sprintf("Parameter 'template.components[%d].parameters[%d].type' is required", i, j)
			}
			// Every parameter carries an object named like its type
			// ({"type":"text","text":...}, {"type":"image","image":{...}}).
			if _, ok := p[pt]; !ok {
				return fmt.Sprintf("Parameter 'template.components[%d].parameters[%d].%s' is required for type %q", i, j, pt, pt)
			}
		}
	}
	return ""
}

func validateInteractive(in *waSendInteractive) string {
	if in == nil {
		return "Parameter 'interactive' is required for type 'interactive'"
	}
	switch in.Type {
	case "button", "list", "cta_url", "flow", "location_request_message", "product", "product_list":
	default:
		return fmt.Sprintf("Parameter 'interactive.type' has an unsupported value %q", in.Type)
	}
	needsBody := in.Type != "product" && in.Type != "product_list"
	if needsBody && (in.Body == nil || in.Body.Text == "") {
		return "Parameter 'interactive.body.text' is required"
	}
	if in.Body != nil && utf8.RuneCountInString(in.Body.Text) > 1024 {
		return "Parameter 'interactive.body.text' must be at most 1024 characters long"
	}
	if in.Header != nil && in.Header.Type == "text" && utf8.RuneCountInString(in.Header.Text) > 60 {
		return "Parameter 'interactive.header.text' must be at most 60 characters long"
	}
	if in.Footer != nil && utf8.RuneCountInString(in.Footer.Text) > 60 {
		return "Parameter 'interactive.footer.text' must be at most 60 characters long"
	}
	if in.Action == nil {
		return "Parameter 'interactive.action' is required"
	}
	switch in.Type {
	case "button":
		bs := in.Action.Buttons
		if len(bs) == 0 || len(bs) > 3 {
			return fmt.Sprintf("Parameter 'interactive.action.buttons' must have 1 to 3 buttons, got %d", len(bs))
		}
		seen := map[string]bool{}
		for i, b := range bs {
			switch {
			case b.Type != "reply":
				return fmt.Sprintf("Parameter 'interactive.action.buttons[%d].type' must be 'reply'", i)
			case b.Reply.ID == "" || len(b.Reply.ID) > 256:
				return fmt.Sprintf("Parameter 'interactive.action.buttons[%d].reply.id' must be 1 to 256 characters", i)
			case b.Reply.Title == "" || utf8.RuneCountInString(b.Reply.Title) > 20:
				return fmt.Sprintf("Parameter 'interactive.action.buttons[%d].reply.title' must be 1 to 20 characters", i)
			case seen[b.Reply.ID]:
				return fmt.Sprintf("Parameter 'interactive.action.buttons[%d].reply.id' must be unique", i)
			}
			seen[b.Reply.ID] = true
		}
	case "list":
		if in.Action.Button == "" || utf8.RuneCountInString(in.Action.Button) > 20 {
			return "Parameter 'interactive.action.button' must be 1 to 20 characters"
		}
		rows := 0
		for i, sec := range in.Action.Sections {
			if len(in.Action.Sections) > 1 && (sec.Title == "" || utf8.RuneCountInString(sec.Title) > 24) {
				return fmt.Sprintf("Parameter 'interactive.action.sections[%d].title' must be 1 to 24 characters when there are several sections", i)
			}
			for j, r := range sec.Rows {
				rows++
				switch {
				case r.ID == "" || len(r.ID) > 200:
					return fmt.Sprintf("Parameter 'interactive.action.sections[%d].rows[%d].id' must be 1 to 200 characters", i, j)
				case r.Title == "" || utf8.RuneCountInString(r.Title) > 24:
					return fmt.Sprintf("Parameter 'interactive.action.sections[%d].rows[%d].title' must be 1 to 24 characters", i, j)
				case utf8.RuneCountInString(r.Description) > 72:
					return fmt.Sprintf("Parameter 'interactive.action.sections[%d].rows[%d].description' must be at most 72 characters", i, j)
				}
			}
		}
		if rows == 0 || rows > 10 {
			return fmt.Sprintf("Parameter 'interactive.action.sections' must hold 1 to 10 rows in total, got %d", rows)
		}
	}
	return ""
}
