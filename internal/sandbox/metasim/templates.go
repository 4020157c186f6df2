package metasim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// GET /{waba-id}/message_templates lists a WhatsApp Business Account's
// message templates, as Graph does: a data array of template nodes (name,
// language, category, status, components, id) and cursor paging with a
// next link while more remain. The token may read the WABA when it is the
// token of one of its numbers; any other answers like GET on phone_numbers
// does (100 / GraphMethodException), and an unknown token 190.

// Template is one message template as Graph lists it.
type Template struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	Language   string           `json:"language"`
	Category   string           `json:"category"`
	Status     string           `json:"status"`
	Components []map[string]any `json:"components"`
}

// DefaultTemplates are what a WABA holds until SetTemplates changes it: an
// approved utility template with body variables, an approved marketing one
// with a text header variable, one pending review and one rejected.
func DefaultTemplates() []Template {
	return []Template{
		{ID: "1000000000000001", Name: "order_update", Language: "ru", Category: "UTILITY", Status: "APPROVED",
			Components: []map[string]any{
				{"type": "BODY", "text": "Здравствуйте, {{1}}! Заказ {{2}} передан в доставку.",
					"example": map[string]any{"body_text": [][]string{{"Анна", "A-1024"}}}},
			}},
		{ID: "1000000000000002", Name: "spring_sale", Language: "en_US", Category: "MARKETING", Status: "APPROVED",
			Components: []map[string]any{
				{"type": "HEADER", "format": "TEXT", "text": "Hello {{1}}", "example": map[string]any{"header_text": []string{"Anna"}}},
				{"type": "BODY", "text": "Our spring sale starts today: {{1}} off everything until {{2}}."},
				{"type": "FOOTER", "text": "Reply STOP to opt out"},
				{"type": "BUTTONS", "buttons": []map[string]any{{"type": "QUICK_REPLY", "text": "Stop promotions"}}},
			}},
		{ID: "1000000000000003", Name: "appointment_reminder", Language: "ru", Category: "UTILITY", Status: "PENDING",
			Components: []map[string]any{{"type": "BODY", "text": "Напоминаем о записи {{1}} в {{2}}."}}},
		{ID: "1000000000000004", Name: "win_back", Language: "en_US", Category: "MARKETING", Status: "REJECTED",
			Components: []map[string]any{{"type": "BODY", "text": "We miss you! Come back for a gift."}}},
	}
}

// SetTemplates replaces the message templates of a WABA (a template deleted
// in WhatsApp Manager disappears from the list).
func (s *Server) SetTemplates(wabaID string, ts []Template) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.templates == nil {
		s.templates = map[string][]Template{}
	}
	s.templates[wabaID] = append([]Template{}, ts...)
}

// Templates are a WABA's message templates as Graph would list them.
func (s *Server) Templates(wabaID string) []Template {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts, set := s.templates[wabaID]; set {
		return append([]Template{}, ts...)
	}
	return DefaultTemplates()
}

// SetTemplatePageSize caps the page of GET /{waba-id}/message_templates,
// so that a test sees paging with a few templates. 0 means Graph's 25.
func (s *Server) SetTemplatePageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.templatePage = n
}

func (s *Server) handleWABATemplates(w http.ResponseWriter, r *http.Request, token, wabaID string) {
	s.mu.Lock()
	allowed := false
	for _, n := range s.numbers {
		if n.wabaID == wabaID && n.token == token {
			allowed = true
		}
	}
	size := s.templatePage
	s.mu.Unlock()
	if !allowed {
		writeGraphError(w, errUnsupported(r.Method, wabaID))
		return
	}
	ts := s.Templates(wabaID)
	limit := 25
	if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 {
		limit = v
	}
	if size > 0 && size < limit {
		limit = size
	}
	start := 0
	if a := r.URL.Query().Get("after"); a != "" {
		raw, err := base64.RawURLEncoding.DecodeString(a)
		n, err2 := strconv.Atoi(string(raw))
		if err != nil || err2 != nil || n < 0 || n > len(ts) {
			writeGraphError(w, &graphError{status: http.StatusBadRequest, Message: "Invalid parameter", Type: "OAuthException", Code: 100})
			return
		}
		start = n
	}
	end := min(start+limit, len(ts))
	type paging struct {
		Cursors struct {
			Before string `json:"before"`
			After  string `json:"after"`
		} `json:"cursors"`
		Next string `json:"next,omitempty"`
	}
	resp := struct {
		Data   []Template `json:"data"`
		Paging *paging    `json:"paging,omitempty"`
	}{Data: append([]Template{}, ts[start:end]...)}
	if end > start {
		p := &paging{}
		p.Cursors.Before = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(start)))
		p.Cursors.After = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		if end < len(ts) {
			q := r.URL.Query()
			q.Set("after", p.Cursors.After)
			q.Set("limit", strconv.Itoa(limit))
			q.Del("access_token")
			p.Next = "https://graph.facebook.com" + r.URL.Path + "?" + q.Encode()
		}
		resp.Paging = p
	}
	writeJSON(w, http.StatusOK, resp)
}

// templateVariable is a placeholder of a template text: {{1}} or {{name}}.
var templateVariable = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}`)

// approvedTemplate is the WABA's approved template a send names, or the
// error Graph answers the send with: 132001 when no approved template has
// that name in that language, 132000 when the header's or the body's text
// parameters are not as many as the template's distinct variables.
func (s *Server) approvedTemplate(wabaID string, t *waSendTemplate) (*Template, *graphError) {
	var found *Template
	ts := s.Templates(wabaID)
	for i := range ts {
		if ts[i].Name == t.Name && ts[i].Language == t.Language.Code && ts[i].Status == "APPROVED" {
			found = &ts[i]
		}
	}
	if found == nil {
		return nil, waError(132001, "(#132001) Template name does not exist in the translation",
			fmt.Sprintf("template name (%s) does not exist in %s", t.Name, t.Language.Code))
	}
	for _, part := range []string{"header", "body"} {
		want, media := 0, false
		for _, c := range found.Components {
			typ, _ := c["type"].(string)
			text, _ := c["text"].(string)
			format, _ := c["format"].(string)
			if !strings.EqualFold(typ, part) {
				continue
			}
			media = format != "" && !strings.EqualFold(format, "TEXT")
			seen := map[string]bool{}
			for _, m := range templateVariable.FindAllStringSubmatch(text, -1) {
				seen[m[1]] = true
			}
			want = len(seen)
		}
		if media {
			// A media header takes its file as its one parameter.
			if e := mediaHeaderParam(found, t); e != nil {
				return nil, e
			}
			continue
		}
		got := 0
		for _, c := range t.Components {
			if strings.EqualFold(c.Type, part) {
				got += len(c.Parameters)
			}
		}
		if got != want {
			return nil, waError(132000, "(#132000) Number of parameters does not match the expected number of params",
				fmt.Sprintf("%s: number of localizable_params (%d) does not match the expected number of params (%d)", part, got, want))
		}
	}
	return found, nil
}

// mediaHeaderParam checks the header parameter of a template whose header
// is a file: one parameter of the header's format (image, video,
// document), else 132012 as Graph answers.
func mediaHeaderParam(found *Template, t *waSendTemplate) *graphError {
	want := ""
	for _, c := range found.Components {
		if typ, _ := c["type"].(string); strings.EqualFold(typ, "header") {
			want, _ = c["format"].(string)
		}
	}
	got := "UNKNOWN"
	for _, c := range t.Components {
		if strings.EqualFold(c.Type, "header") && len(c.Parameters) == 1 {
			var pt string
			if json.Unmarshal(c.Parameters[0]["type"], &pt) == nil {
				got = strings.ToUpper(pt)
			}
		}
	}
	if got == strings.ToUpper(want) {
		return nil
	}
	return waError(132012, "(#132012) Parameter format does not match format in the created template",
		fmt.Sprintf("header: Format mismatch, expected %s, received %s", strings.ToUpper(want), got))
}
