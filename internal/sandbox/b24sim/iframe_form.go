package b24sim

import (
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// IframeField is one field of the form Bitrix24's page posts to an iframe
// handler.
type IframeField struct{ Name, Value string }

// IframeRequest is the POST with which Bitrix24's page opens one of the
// app's iframes (contract §1.4). OpenPlacement sends it from the
// simulator; a browser sends it through AutoSubmitHTML, as a portal user's
// browser would.
type IframeRequest struct {
	// URL is the handler with DOMAIN, PROTOCOL, LANG and APP_SID appended.
	URL       string
	Placement string
	// Fields are in Bitrix24's order; they carry a fresh access token.
	Fields []IframeField

	memberID, domain string
}

func (r *IframeRequest) encode() string {
	var f formFields
	for _, kv := range r.Fields {
		f.add(kv.Name, kv.Value)
	}
	return f.encode()
}

// PlacementRequest builds, without sending, the request OpenPlacement
// sends (see there for the rules on placement, user, handler and
// language); it issues the user a fresh token pair as Bitrix24 does on
// every iframe render.
func (s *Server) PlacementRequest(memberID string, userID int, placement, handlerURL string, options map[string]any, lang string) (*IframeRequest, error) {
	placement = strings.ToUpper(strings.TrimSpace(placement))
	if placement == "" {
		return nil, errors.New("b24sim: open placement: empty placement code")
	}
	optJSON := "{}"
	if len(options) > 0 {
		raw, err := marshalJSON(options)
		if err != nil {
			return nil, fmt.Errorf("b24sim: open placement: options: %w", err)
		}
		// PHP's json_encode escapes slashes: {"URI":"\/crm\/deal\/details\/5\/"}.
		optJSON = strings.ReplaceAll(string(raw), "/", `\/`)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		return nil, err
	}
	if userID == 0 {
		userID = p.adminID
	}
	if _, ok := p.user(userID); !ok {
		return nil, fmt.Errorf("b24sim: open placement: portal %s has no user %d", p.memberID, userID)
	}
	if handlerURL == "" {
		for _, b := range p.placements {
			if b.Placement == placement {
				handlerURL = b.Handler
				break
			}
		}
		if handlerURL == "" {
			return nil, fmt.Errorf("b24sim: open placement %s: %w", placement, ErrPlacementNotBound)
		}
	} else if !placementManagedBySystem(placement) {
		bound := false
		for _, b := range p.placements {
			if b.Placement == placement && b.Handler == handlerURL {
				bound = true
				break
			}
		}
		if !bound {
			return nil, fmt.Errorf("b24sim: open placement %s at %s: %w", placement, handlerURL, ErrPlacementNotBound)
		}
	}
	target, err := url.Parse(handlerURL)
	if err != nil {
		return nil, fmt.Errorf("b24sim: open placement: handler URL: %w", err)
	}
	if lang == "" {
		lang = p.lang
	}
	// Appended to whatever query the handler URL has, in Bitrix24's order.
	q := "DOMAIN=" + url.QueryEscape(p.domain) + "&PROTOCOL=1&LANG=" + url.QueryEscape(lang) + "&APP_SID=" + randomHex(16)
	if target.RawQuery != "" {
		target.RawQuery += "&" + q
	} else {
		target.RawQuery = q
	}
	access, refresh, _ := s.issuePairLocked(p, userID, s.clock())
	return &IframeRequest{URL: target.String(), Placement: placement, memberID: p.memberID, domain: p.domain, Fields: []IframeField{
		{"AUTH_ID", access},
		{"AUTH_EXPIRES", strconv.Itoa(int(s.opts.AccessTTL / time.Second))},
		{"REFRESH_ID", refresh},
		{"SERVER_ENDPOINT", s.clientEndpointLocked()},
		{"APPLICATION_TOKEN", p.appToken},
		{"APPLICATION_SCOPE", p.scope},
		{"member_id", p.memberID},
		{"status", p.status},
		{"PLACEMENT", placement},
		{"PLACEMENT_OPTIONS", optJSON},
	}}, nil
}

var autoSubmit = template.Must(template.New("open").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>b24sim · {{.Placement}}</title></head>
<body><form method="post" action="{{.URL}}">{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}
<noscript><button>Open / Открыть</button></noscript></form>
<script>document.forms[0].submit();</script></body></html>
`))

// AutoSubmitHTML is a page that posts the request from the browser that
// loads it, the way Bitrix24's page fills an iframe. The page holds a
// live access token: serve it only to the person opening the app.
func (r *IframeRequest) AutoSubmitHTML() ([]byte, error) {
	var b strings.Builder
	if err := autoSubmit.Execute(&b, r); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
