package b24sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrPlacementNotBound is returned (wrapped) by OpenPlacement when the app
// has no placement.bind registration of the placement with that handler:
// Bitrix24 shows no such widget.
var ErrPlacementNotBound = errors.New("placement not bound to the handler")

// PlacementEventPrefix prefixes the Event of the EventDelivery recorded for
// OpenPlacement, e.g. "PLACEMENT:CRM_DEAL_DETAIL_TAB".
const PlacementEventPrefix = "PLACEMENT:"

// maxIframeBody caps how much of a handler's page OpenPlacement reads.
const maxIframeBody = 8 << 20

// placementManagedBySystem are codes whose handlers come from elsewhere
// than placement.bind: the app's main page, the connector settings page
// (imconnector.register) and a robot's settings dialog (bizproc.robot.add
// with USE_PLACEMENT).
func placementManagedBySystem(code string) bool {
	switch code {
	case "DEFAULT", "SETTING_CONNECTOR", "BIZPROC_ACTIVITY_PROPERTIES_DIALOG":
		return true
	}
	return false
}

// OpenPlacement simulates a user of the portal opening one of the app's
// iframes: the main page (placement "DEFAULT"), a widget bound with
// placement.bind (e.g. CRM_DEAL_DETAIL_TAB with options {"ID": "8061"}), or
// a page Bitrix24 manages (SETTING_CONNECTOR, the robot settings dialog).
// Like the browser form Bitrix24 renders (contract §1.4), it POSTs to
// handlerURL with the query string DOMAIN, PROTOCOL ("1"), LANG (lang, else
// the portal language), APP_SID (random) appended, and the form body, in this
// order: AUTH_ID (a fresh access token of userID), AUTH_EXPIRES ("3600"),
// REFRESH_ID (its refresh token), SERVER_ENDPOINT, APPLICATION_TOKEN,
// APPLICATION_SCOPE (comma list), member_id, status, PLACEMENT,
// PLACEMENT_OPTIONS (options as a JSON object string with PHP's escaped
// slashes; "{}" when empty). Origin and Referer name the portal.
//
// userID 0 means the portal admin; an unknown user is an error. An empty
// handlerURL means the handler of the placement's first placement.bind
// registration. For codes other than DEFAULT, SETTING_CONNECTOR and
// BIZPROC_ACTIVITY_PROPERTIES_DIALOG the placement must be bound to
// handlerURL (ErrPlacementNotBound otherwise). The request is recorded in
// Deliveries with Event PlacementEventPrefix+placement. It returns the
// handler's status and page; err reports setup and transport errors.
func (s *Server) OpenPlacement(memberID string, userID int, placement, handlerURL string, options map[string]any, lang string) (status int, body string, err error) {
	placement = strings.ToUpper(strings.TrimSpace(placement))
	if placement == "" {
		return 0, "", errors.New("b24sim: open placement: empty placement code")
	}
	optJSON := "{}"
	if len(options) > 0 {
		raw, err := marshalJSON(options)
		if err != nil {
			return 0, "", fmt.Errorf("b24sim: open placement: options: %w", err)
		}
		// PHP's json_encode escapes slashes: {"URI":"\/crm\/deal\/details\/5\/"}.
		optJSON = strings.ReplaceAll(string(raw), "/", `\/`)
	}

	s.mu.Lock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		s.mu.Unlock()
		return 0, "", err
	}
	if userID == 0 {
		userID = p.adminID
	}
	if _, ok := p.user(userID); !ok {
		s.mu.Unlock()
		return 0, "", fmt.Errorf("b24sim: open placement: portal %s has no user %d", p.memberID, userID)
	}
	if handlerURL == "" {
		for _, b := range p.placements {
			if b.Placement == placement {
				handlerURL = b.Handler
				break
			}
		}
		if handlerURL == "" {
			s.mu.Unlock()
			return 0, "", fmt.Errorf("b24sim: open placement %s: %w", placement, ErrPlacementNotBound)
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
			s.mu.Unlock()
			return 0, "", fmt.Errorf("b24sim: open placement %s at %s: %w", placement, handlerURL, ErrPlacementNotBound)
		}
	}
	target, err := url.Parse(handlerURL)
	if err != nil {
		s.mu.Unlock()
		return 0, "", fmt.Errorf("b24sim: open placement: handler URL: %w", err)
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
	now := s.clock()
	access, refresh, _ := s.issuePairLocked(p, userID, now)
	var f formFields
	f.add("AUTH_ID", access)
	f.add("AUTH_EXPIRES", strconv.Itoa(int(s.opts.AccessTTL/time.Second)))
	f.add("REFRESH_ID", refresh)
	f.add("SERVER_ENDPOINT", s.clientEndpointLocked())
	f.add("APPLICATION_TOKEN", p.appToken)
	f.add("APPLICATION_SCOPE", p.scope)
	f.add("member_id", p.memberID)
	f.add("status", p.status)
	f.add("PLACEMENT", placement)
	f.add("PLACEMENT_OPTIONS", optJSON)
	domain := p.domain
	s.mu.Unlock()

	form := f.encode()
	d := EventDelivery{MemberID: p.memberID, Event: PlacementEventPrefix + placement, Handler: target.String(), Body: form}
	status, body, err = s.postIframe(target.String(), form, domain)
	d.Status = status
	if err != nil {
		d.Err = err.Error()
		s.log.Warn("iframe open failed", "member_id", p.memberID, "placement", placement, "err", err)
	} else {
		s.log.Info("iframe opened", "member_id", p.memberID, "placement", placement, "status", status)
	}
	s.mu.Lock()
	d.Time = s.clock()
	s.deliveries = appendCapped(s.deliveries, d, s.opts.MaxRecorded)
	s.mu.Unlock()
	return status, body, err
}

func (s *Server) postIframe(target, form, domain string) (int, string, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, target, strings.NewReader(form))
	if err != nil {
		return 0, "", fmt.Errorf("b24sim: open placement: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://"+domain)
	req.Header.Set("Referer", "https://"+domain+"/")
	req.Header.Set("User-Agent", "Mozilla/5.0 (b24sim) Bitrix24 iframe")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("b24sim: open placement: %w", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(resp.Body, maxIframeBody)); err != nil {
		return resp.StatusCode, buf.String(), fmt.Errorf("b24sim: open placement: read page: %w", err)
	}
	return resp.StatusCode, buf.String(), nil
}
