package b24sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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
	req, err := s.PlacementRequest(memberID, userID, placement, handlerURL, options, lang)
	if err != nil {
		return 0, "", err
	}
	form := req.encode()
	d := EventDelivery{MemberID: req.memberID, Event: PlacementEventPrefix + req.Placement, Handler: req.URL, Body: form}
	status, body, err = s.postIframe(req.URL, form, req.domain)
	d.Status = status
	if err != nil {
		d.Err = err.Error()
		s.log.Warn("iframe open failed", "member_id", req.memberID, "placement", req.Placement, "err", err)
	} else {
		s.log.Info("iframe opened", "member_id", req.memberID, "placement", req.Placement, "status", status)
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
