package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
)

// Limits of the admin API's fields. Names are shown in CRMs and pages; ids
// are Meta's numeric ids; tokens are Meta's (a few hundred characters).
const (
	maxNameRunes    = 200
	maxIDDigits     = 32
	maxTokenBytes   = 4096
	maxDisplayPhone = 32
	maxTimezone     = 64
)

// reply answers v as JSON without escaping <, > and & (people read these
// answers on terminals, where \u003c is noise).
func reply(c *gin.Context, status int, v any) { c.PureJSON(status, v) }

// textProblem says why s cannot be a free-text field, or "" when it can.
// Control characters (newlines, escapes) and bidi controls (which make a
// name read differently from what it is) are refused.
func textProblem(s string, max int) string {
	if utf8.RuneCountInString(s) > max {
		return fmt.Sprintf("at most %d characters", max)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return fmt.Sprintf("control and text-direction characters (here U+%04X) are not allowed", r)
		}
	}
	return ""
}

// validName validates a name: required, trimmed, bounded, printable.
func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", fault.Newf(fault.Invalid, "name_invalid", "name is required, up to %d characters", maxNameRunes)
	}
	if p := textProblem(name, maxNameRunes); p != "" {
		return "", fault.New(fault.Invalid, "name_invalid", "name: "+p)
	}
	return name, nil
}

// checkName is validName for handlers: it answers and returns false when
// the name is refused.
func checkName(c *gin.Context, name string) (string, bool) {
	name, err := validName(name)
	if err != nil {
		fe := fault.As(err)
		fail(c, http.StatusUnprocessableEntity, fe.Code, fe.Message)
		return "", false
	}
	return name, true
}

// checkOptionalName validates a name a PATCH may leave out (nil), trimming
// it in place. It answers and returns false when the name is refused.
func checkOptionalName(c *gin.Context, name *string) bool {
	if name == nil {
		return true
	}
	trimmed, ok := checkName(c, *name)
	*name = trimmed
	return ok
}

// tokenProblem says why s cannot be an access token: Meta's tokens are
// printable ASCII without spaces.
func tokenProblem(s string) string {
	if s == "" {
		return "access_token cannot be empty"
	}
	if len(s) > maxTokenBytes {
		return fmt.Sprintf("access_token is at most %d characters", maxTokenBytes)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return "access_token is the token exactly as Meta shows it: printable characters, no spaces"
		}
	}
	return ""
}

// displayPhoneProblem: display_phone is how people write the number.
func displayPhoneProblem(s string) string {
	if len(s) > maxDisplayPhone {
		return fmt.Sprintf("display_phone is at most %d characters", maxDisplayPhone)
	}
	for _, r := range s {
		if !strings.ContainsRune("+0123456789 -()", r) {
			return `display_phone is the number as people write it: digits, spaces, "+", "-", "(" and ")"`
		}
	}
	return ""
}

// phoneNumberIDProblem explains the usual mix-up: the number given where
// Meta's id of the number is asked for.
func phoneNumberIDProblem(s string) string {
	if digitsOnly(s) {
		return ""
	}
	const what = "phone_number_id is Meta's numeric id of the number (WhatsApp Manager → Phone numbers, or the app's WhatsApp → API Setup page), not the phone number itself"
	if s == "" {
		return "phone_number_id is required: " + what
	}
	if strings.ContainsAny(s, "0123456789") && strings.Trim(s, "+0123456789 -()") == "" {
		return what + "; the number goes in display_phone"
	}
	return what
}

// notProven is the single answer to every failed claim of an account:
// a token Meta does not accept for it, an account outside the given
// business account, or an account another workspace holds. Saying which
// would tell a stranger that the number is connected here.
func notProven(typ channel.Type) error {
	// Both causes are named, since the answer cannot say which: a rightful
	// owner whose number the operator placed elsewhere must not be sent
	// chasing a token that is fine.
	const elsewhere = "; if the token and ids are right, the account may be connected in another workspace: ask the gateway's operator"
	msg := "Meta did not confirm this access_token for this ig_user_id: use a token of that Instagram professional account (its Page's token, or its Instagram Login token) and the account's id" + elsewhere
	if typ == channel.WhatsApp {
		msg = "Meta did not confirm this access_token for this phone_number_id in this waba_id: use a token of the business that owns the number " +
			"(a system-user token with whatsapp_business_messaging and whatsapp_business_management) and Meta's ids from WhatsApp Manager; " +
			"phone_number_id is Meta's id of the number, not the number itself" + elsewhere
	}
	return fault.New(fault.Invalid, "account_not_verified", msg)
}

// claim is an account a request wants a channel to act for.
type claim struct {
	typ       channel.Type
	accountID string
	owner     string // WABA id for WhatsApp
	token     string
	workspace string
	// held: also refuse when another workspace holds the account (a new
	// channel, or a disabled one coming back).
	held bool
	// operator: the caller is the gateway's operator, who may claim an
	// account another workspace holds (moving a business).
	operator bool
}

// proveOwnership asks the messenger whether the token may act for the
// account (and, for WhatsApp, whether the WABA holds the number), then
// whether another workspace holds it. Both refusals answer the same, and
// both come after the messenger's round trip, so neither the answer nor
// its timing says the account is connected elsewhere. The operator may
// claim an account another workspace holds (moving a business).
func (s *Server) proveOwnership(ctx context.Context, cl claim) (*channel.Account, error) {
	p, ok := s.d.Registry.ByType(cl.typ)
	if !ok || p.Verifier == nil {
		return nil, fmt.Errorf("web: no account verifier for %s", cl.typ)
	}
	acc, err := p.Verifier.VerifyAccount(ctx, channel.Credentials{AccountID: cl.accountID, AccessToken: cl.token}, cl.owner)
	switch {
	case errors.Is(err, channel.ErrAccountNotProven):
		s.d.Log.Info("account claim refused by the messenger", "channel_type", cl.typ, "account_id", cl.accountID, "workspace_id", cl.workspace, "err", err)
		return nil, notProven(cl.typ)
	case err != nil:
		s.d.Log.Warn("could not verify an account with the messenger", "channel_type", cl.typ, "account_id", cl.accountID, "err", err)
		return nil, fault.New(fault.Upstream, "verification_unavailable", "could not reach Meta to confirm the access_token; nothing was changed, try again")
	}
	if cl.held && !cl.operator {
		held, err := s.d.Store.AccountHeldElsewhere(ctx, cl.typ, cl.accountID, cl.workspace)
		if err != nil {
			return nil, err
		}
		if held {
			s.d.Log.Warn("account claim refused: another workspace holds the account", "channel_type", cl.typ, "account_id", cl.accountID, "workspace_id", cl.workspace)
			return nil, notProven(cl.typ)
		}
	}
	return acc, nil
}

// moveChannel gives a channel with its history to another workspace
// (operator only): for example the default workspace's channels to the
// workspace a CRM install made. Its CRM bindings in the old workspace are
// removed; bind it again in the new one.
func (s *Server) moveChannel(c *gin.Context) {
	var req struct {
		WorkspaceID string `json:"workspace_id"`
	}
	if !decode(c, &req) {
		return
	}
	if req.WorkspaceID == "" {
		fail(c, http.StatusUnprocessableEntity, "workspace_id_required", "workspace_id is required: the workspace to move the channel to")
		return
	}
	ctx := c.Request.Context()
	if _, err := s.d.Store.GetChannel(ctx, store.All, c.Param("id")); err != nil {
		s.failErr(c, err)
		return
	}
	if _, err := s.d.Store.GetWorkspace(ctx, store.All, req.WorkspaceID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			fail(c, http.StatusNotFound, "workspace_not_found", "no such workspace")
			return
		}
		s.failErr(c, err)
		return
	}
	ch, err := s.d.Store.MoveChannel(ctx, c.Param("id"), req.WorkspaceID)
	if err != nil {
		s.failErr(c, err)
		return
	}
	s.replyChannel(c, http.StatusOK, ch, true)
}
