package metasim

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
)

// The reads a gateway makes to prove that a token belongs to an account
// before it connects it:
//
//	GET /{phone-number-id}         the WhatsApp Business Phone Number node
//	GET /{waba-id}/phone_numbers   the numbers of a WhatsApp Business Account
//	GET /{ig-user-id}              the IG User node (Instagram professional account)
//
// Graph answers an id the token may not read exactly as it answers an id
// that does not exist (100 / subcode 33), and a token it does not know with
// 190; so does the simulator.

// waPhoneNumberNode is the Phone Number node with its default fields, in the
// order Graph's sample response lists them.
type waPhoneNumberNode struct {
	VerifiedName           string `json:"verified_name"`
	CodeVerificationStatus string `json:"code_verification_status"`
	DisplayPhoneNumber     string `json:"display_phone_number"`
	QualityRating          string `json:"quality_rating"`
	PlatformType           string `json:"platform_type,omitempty"`
	ID                     string `json:"id"`
}

type cursorPaging struct {
	Cursors struct {
		Before string `json:"before"`
		After  string `json:"after"`
	} `json:"cursors"`
}

// verifiedName is what the simulator's numbers are registered as.
const verifiedName = "Switchboard Sandbox"

func (n *waNumber) node() waPhoneNumberNode {
	return waPhoneNumberNode{VerifiedName: verifiedName, CodeVerificationStatus: "VERIFIED",
		DisplayPhoneNumber: formatDisplayPhone(n.displayPhone), QualityRating: "GREEN", PlatformType: "CLOUD_API", ID: n.id}
}

// formatDisplayPhone renders stored digits the way Graph shows them
// ("+7 701-234-5678" style is Meta's; a plus and the digits are enough to
// be recognisable and parseable).
func formatDisplayPhone(digits string) string {
	if digits == "" {
		return ""
	}
	return "+" + digits
}

// handlePhoneNumberGet serves GET /{phone-number-id} for the token that
// owns the number; it reports whether id named such a number.
func (s *Server) handlePhoneNumberGet(w http.ResponseWriter, token, id string) bool {
	num := s.whatsAppNumber(id, token)
	if num == nil {
		return false
	}
	writeJSON(w, http.StatusOK, num.node())
	return true
}

// handleWABAPhoneNumbers serves GET /{waba-id}/phone_numbers: the token may
// read a WABA when it is the token of one of the WABA's numbers (in Meta's
// terms, a system user with access to that WhatsApp Business Account).
func (s *Server) handleWABAPhoneNumbers(w http.ResponseWriter, r *http.Request, token, wabaID string) {
	s.mu.Lock()
	var nums []*waNumber
	allowed := false
	for _, n := range s.numbers {
		if n.wabaID != wabaID {
			continue
		}
		nums = append(nums, n)
		allowed = allowed || n.token == token
	}
	s.mu.Unlock()
	if !allowed {
		writeGraphError(w, errUnsupported(r.Method, wabaID))
		return
	}
	slices.SortFunc(nums, func(a, b *waNumber) int { return strings.Compare(a.id, b.id) })
	resp := struct {
		Data   []waPhoneNumberNode `json:"data"`
		Paging cursorPaging        `json:"paging"`
	}{Data: make([]waPhoneNumberNode, 0, len(nums))}
	for _, n := range nums {
		resp.Data = append(resp.Data, n.node())
	}
	// One page always: a WABA holds a handful of numbers. The cursors are
	// opaque to clients, as Graph's are.
	resp.Paging.Cursors.Before = base64.RawURLEncoding.EncodeToString([]byte(nums[0].id))
	resp.Paging.Cursors.After = base64.RawURLEncoding.EncodeToString([]byte(nums[len(nums)-1].id))
	writeJSON(w, http.StatusOK, resp)
}

// handleIGUserGet serves GET /{ig-user-id} (or /me) for the account's own
// token, with the fields asked for (id always).
func (s *Server) handleIGUserGet(w http.ResponseWriter, r *http.Request, token, id string) bool {
	acc := s.instagramAccount(id, token)
	if acc == nil {
		return false
	}
	resp := map[string]any{"id": acc.id}
	for _, f := range strings.Split(r.URL.Query().Get("fields"), ",") {
		switch strings.TrimSpace(f) {
		case "username":
			resp["username"] = acc.username()
		case "name":
			resp["name"] = verifiedName
		case "user_id": // graph.instagram.com (Instagram Login) names the account id so
			resp["user_id"] = acc.id
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return true
}

// username is the simulated account's handle, stable per id.
func (a *igAccount) username() string {
	suffix := a.id
	if len(suffix) > 4 {
		suffix = suffix[len(suffix)-4:]
	}
	return "sandbox_shop_" + suffix
}
