package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// Branch routing: one channel (one WhatsApp number) bound to several
// integrations, one per branch of a business, each with its own CRM. In
// branch mode every customer belongs to exactly one branch, chosen once
// (sticky) by the rules of Decide; only that branch's binding gets the
// customer's dialog and mirroring. The rules are evaluated without a
// database (Decide) so they are tested as a table.

// JobBranchMenu sends the branch menu to a customer: an outbound message,
// sent by a queue worker after the ingest transaction commits, never from
// inside it.
const JobBranchMenu = "routing.branch_menu"

// MaxMenus is how many times a customer who does not choose is sent the
// menu. After that the default branch takes them: the configured one, or
// the first branch of the list when none is configured — a customer who
// never chooses is never lost from sight (no dialog, no CRM, nobody told).
const MaxMenus = 3

// Limits of a branch configuration.
const (
	MaxBranches       = 20
	MaxBranchName     = 100
	MaxKeywords       = 50
	MaxKeyword        = 50
	MaxBranchNumbers  = 1000
	MaxMenuText       = 1000
	maxNumberInputLen = 64
)

// Error codes of an invalid routing configuration or move.
const (
	CodeRoutingMode       = "mode_invalid"
	CodeBranchesRequired  = "branches_required"
	CodeBranchesTooMany   = "branches_too_many"
	CodeBranchNotBound    = "branch_integration_not_bound"
	CodeBranchIntegration = "branch_integration_duplicate"
	CodeBranchName        = "branch_name_invalid"
	CodeBranchNameDup     = "branch_name_duplicate"
	CodeKeyword           = "keyword_invalid"
	CodeKeywordDup        = "keyword_duplicate"
	CodeNumber            = "number_invalid"
	CodeNumberDup         = "number_duplicate"
	CodeMenuText          = "menu_text_invalid"
	CodeLanguage          = "language_invalid"
	CodeDefaultBranch     = "default_integration_invalid"
	CodeNotBranchMode     = "routing_not_branch"
	CodeCustomerNotFound  = "customer_not_found"
	CodeOtherBranch       = "customer_other_branch"
)

// Branch is one branch of a channel: the integration (CRM) that serves
// it, its name in the menu, the words that choose it in a customer's
// message and the customers' numbers that belong to it (E.164 once
// validated).
type Branch struct {
	IntegrationID string   `json:"integration_id"`
	Name          string   `json:"name"`
	Keywords      []string `json:"keywords"`
	Numbers       []string `json:"numbers"`
}

// BranchConfig is a channel's routing: PUT/GET
// /api/v1/channels/{id}/routing. Mode "all" keeps the branches (switching
// back restores them) but ignores them.
type BranchConfig struct {
	Mode string `json:"mode"`
	// MenuText opens the menu; empty means the default in Language.
	MenuText string `json:"menu_text"`
	// Language of the menu: "ru" (default) or "en".
	Language string `json:"language"`
	// DefaultIntegrationID takes a customer who did not choose after
	// MaxMenus menus; "" means the first branch of the list.
	DefaultIntegrationID string   `json:"default_integration_id"`
	Branches             []Branch `json:"branches"`
}

func invalid(code, field, format string, a ...any) *fault.Error {
	e := fault.Newf(fault.Invalid, code, field+": "+format, a...)
	e.Field = field
	return e
}

// Validate checks a configuration and returns it normalised (names and
// keywords trimmed, keywords lower-case, numbers E.164, defaults filled).
// bound lists the integrations the channel is bound to; numbers reads
// numbers the way the workspace's people write them. The first problem is
// a fault naming the field, e.g. "branches[1].numbers[0]".
func (c BranchConfig) Validate(bound []string, numbers phone.Options) (BranchConfig, error) {
	out := BranchConfig{Mode: c.Mode, MenuText: strings.TrimSpace(c.MenuText), Language: c.Language,
		DefaultIntegrationID: c.DefaultIntegrationID, Branches: []Branch{}}
	switch c.Mode {
	case store.RoutingAll, store.RoutingBranch:
	default:
		return out, invalid(CodeRoutingMode, "mode", "%q is not %q or %q", c.Mode, store.RoutingAll, store.RoutingBranch)
	}
	switch c.Language {
	case "":
		out.Language = "ru"
	case "ru", "en":
	default:
		return out, invalid(CodeLanguage, "language", "%q is not \"ru\" or \"en\"", c.Language)
	}
	if p := textProblem(out.MenuText, MaxMenuText, true); p != "" {
		return out, invalid(CodeMenuText, "menu_text", "%s", p)
	}
	if c.Mode == store.RoutingBranch && len(c.Branches) == 0 {
		return out, invalid(CodeBranchesRequired, "branches", "branch mode needs at least one branch")
	}
	if len(c.Branches) > MaxBranches {
		return out, invalid(CodeBranchesTooMany, "branches", "at most %d branches", MaxBranches)
	}
	isBound := map[string]bool{}
	for _, id := range bound {
		isBound[id] = true
	}
	integrations, names, keywords, nums := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	for i, b := range c.Branches {
		at := fmt.Sprintf("branches[%d]", i)
		if !isBound[b.IntegrationID] {
			return out, invalid(CodeBranchNotBound, at+".integration_id", "%q is not an integration this channel is bound to", b.IntegrationID)
		}
		if j, ok := integrations[b.IntegrationID]; ok {
			return out, invalid(CodeBranchIntegration, at+".integration_id", "the integration is branches[%d] already: one branch per integration", j)
		}
		integrations[b.IntegrationID] = i
		nb := Branch{IntegrationID: b.IntegrationID, Name: strings.TrimSpace(b.Name), Keywords: []string{}, Numbers: []string{}}
		if nb.Name == "" {
			return out, invalid(CodeBranchName, at+".name", "a name is required (the menu shows it)")
		}
		if p := textProblem(nb.Name, MaxBranchName, false); p != "" {
			return out, invalid(CodeBranchName, at+".name", "%s", p)
		}
		if _, err := strconv.Atoi(nb.Name); err == nil {
			return out, invalid(CodeBranchName, at+".name", "a name cannot be a number: customers answer the menu with numbers")
		}
		nk := fold(nb.Name)
		if j, ok := names[nk]; ok {
			return out, invalid(CodeBranchNameDup, at+".name", "%q is the name of branches[%d] too", nb.Name, j)
		}
		names[nk] = i
		if len(b.Keywords) > MaxKeywords {
			return out, invalid(CodeKeyword, at+".keywords", "at most %d keywords", MaxKeywords)
		}
		for k, kw := range b.Keywords {
			f := fmt.Sprintf("%s.keywords[%d]", at, k)
			kw = strings.TrimSpace(kw)
			words := tokens(kw)
			if len(words) == 0 {
				return out, invalid(CodeKeyword, f, "a keyword needs a letter or a digit")
			}
			if p := textProblem(kw, MaxKeyword, false); p != "" {
				return out, invalid(CodeKeyword, f, "%s", p)
			}
			if len(words) == 1 {
				if _, err := strconv.Atoi(words[0]); err == nil {
					return out, invalid(CodeKeyword, f, "a keyword cannot be a number: customers answer the menu with numbers")
				}
			}
			norm := strings.Join(words, " ")
			if j, ok := keywords[norm]; ok {
				if j == i {
					continue // the same word twice in one branch: kept once
				}
				return out, invalid(CodeKeywordDup, f, "%q chooses branches[%d] already", kw, j)
			}
			keywords[norm] = i
			nb.Keywords = append(nb.Keywords, norm)
		}
		if len(b.Numbers) > MaxBranchNumbers {
			return out, invalid(CodeNumber, at+".numbers", "at most %d numbers", MaxBranchNumbers)
		}
		for k, raw := range b.Numbers {
			f := fmt.Sprintf("%s.numbers[%d]", at, k)
			if len(raw) > maxNumberInputLen {
				return out, invalid(CodeNumber, f, "at most %d characters", maxNumberInputLen)
			}
			e164, err := phone.Normalize(raw, numbers)
			if err != nil {
				return out, invalid(CodeNumber, f, "%q is not a phone number", raw)
			}
			if j, ok := nums[e164]; ok {
				if j == i {
					continue
				}
				return out, invalid(CodeNumberDup, f, "%s is in branches[%d] already: a customer belongs to one branch", e164, j)
			}
			nums[e164] = i
			nb.Numbers = append(nb.Numbers, e164)
		}
		out.Branches = append(out.Branches, nb)
	}
	if c.DefaultIntegrationID != "" {
		if _, ok := integrations[c.DefaultIntegrationID]; !ok {
			return out, invalid(CodeDefaultBranch, "default_integration_id", "%q is not the integration of one of the branches", c.DefaultIntegrationID)
		}
	}
	return out, nil
}

// textProblem says why s cannot be shown to customers as is, or "".
func textProblem(s string, max int, multiline bool) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	if utf8.RuneCountInString(s) > max {
		return fmt.Sprintf("at most %d characters", max)
	}
	for _, r := range s {
		if multiline && r == '\n' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Sprintf("control and text-direction characters (here U+%04X) are not allowed", r)
		}
	}
	return ""
}

// fold is the form in which customers' words and the configured names
// and keywords are compared: lower case, ё as е (people write both).
func fold(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "ё", "е")
}

// tokens splits text into folded words (letters and digits).
func tokens(s string) []string {
	return strings.FieldsFunc(fold(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// Customer is what Decide knows of the customer a message came from.
type Customer struct {
	// Phone is the customer's number in E.164 ("" on Instagram).
	Phone string
	// Branch is the integration the customer belongs to, "" if none yet.
	Branch string
	// MenusSent counts the menus sent to the customer while choosing.
	MenusSent int
	// Previous are the integrations the customer had a dialog in before
	// they had a branch (from before the channel was in branch mode).
	Previous []string
}

// Decision is what Decide chose. IntegrationID "" means no branch yet:
// the message is held, and a menu goes out when SendMenu says so.
type Decision struct {
	IntegrationID string
	// Source is the rule that chose (store.BranchBy*), or "sticky" for a
	// customer who had a branch.
	Source   string
	SendMenu bool
}

// SourceSticky is a customer staying in the branch they are in.
const SourceSticky = "sticky"

// has reports whether the configuration has a branch for the integration.
func (c *BranchConfig) has(integrationID string) bool {
	for _, b := range c.Branches {
		if b.IntegrationID == integrationID {
			return true
		}
	}
	return false
}

// keepBound drops the branches whose integration was unbound from the
// channel since the configuration was saved: they leave the menu, and
// their customers choose again (a customer is never held for a CRM that
// no longer takes the channel).
func (c *BranchConfig) keepBound(bound []string) {
	is := map[string]bool{}
	for _, id := range bound {
		is[id] = true
	}
	kept := c.Branches[:0:0]
	for _, b := range c.Branches {
		if is[b.IntegrationID] {
			kept = append(kept, b)
		}
	}
	c.Branches = kept
}

// Decide picks the branch of a customer's message, in this order: the
// customer's branch (sticky); the one branch whose CRM already had them
// (previous); a branch listing their number; after a menu,
// a reply with a branch's number ("2") or name; a branch's keyword as a
// word of the message (or the whole message being a branch's name);
// otherwise the menu, up to MaxMenus times; then the default branch (the
// configured one, else the first). With a single branch there is nothing
// to choose: it takes every customer at once, with no menu.
func (c *BranchConfig) Decide(cu Customer, text string) Decision {
	if cu.Branch != "" && c.has(cu.Branch) {
		return Decision{IntegrationID: cu.Branch, Source: SourceSticky}
	}
	// The customer's previous branch: a customer of exactly one of the
	// branches' CRMs stays theirs (of several, they choose).
	prev := ""
	for _, id := range cu.Previous {
		if !c.has(id) || id == prev {
			continue
		}
		if prev != "" {
			prev = ""
			break
		}
		prev = id
	}
	if prev != "" {
		return Decision{IntegrationID: prev, Source: store.BranchByPrevious}
	}
	if len(c.Branches) == 1 {
		return Decision{IntegrationID: c.Branches[0].IntegrationID, Source: store.BranchByDefault}
	}
	if cu.Phone != "" {
		for _, b := range c.Branches {
			for _, n := range b.Numbers {
				if n == cu.Phone {
					return Decision{IntegrationID: b.IntegrationID, Source: store.BranchByNumber}
				}
			}
		}
	}
	if cu.MenusSent > 0 {
		if id := c.menuReply(text); id != "" {
			return Decision{IntegrationID: id, Source: store.BranchByMenu}
		}
	}
	if id := c.keyword(text); id != "" {
		return Decision{IntegrationID: id, Source: store.BranchByKeyword}
	}
	if cu.MenusSent < MaxMenus {
		return Decision{SendMenu: true}
	}
	if c.DefaultIntegrationID != "" && c.has(c.DefaultIntegrationID) {
		return Decision{IntegrationID: c.DefaultIntegrationID, Source: store.BranchByDefault}
	}
	if len(c.Branches) > 0 {
		return Decision{IntegrationID: c.Branches[0].IntegrationID, Source: store.BranchByDefault}
	}
	return Decision{}
}

// menuReply reads an answer to the menu: the branch's number ("2", "2.",
// "2)") or its name.
func (c *BranchConfig) menuReply(text string) string {
	t := strings.TrimRight(strings.TrimSpace(text), ".)")
	if n, err := strconv.Atoi(t); err == nil {
		if n >= 1 && n <= len(c.Branches) {
			return c.Branches[n-1].IntegrationID
		}
		return ""
	}
	return c.byName(text)
}

func (c *BranchConfig) byName(text string) string {
	want := strings.Join(tokens(text), " ")
	if want == "" {
		return ""
	}
	for _, b := range c.Branches {
		if strings.Join(tokens(b.Name), " ") == want {
			return b.IntegrationID
		}
	}
	return ""
}

// keyword finds the first branch one of whose keywords is a word (or a
// run of words) of the text; the whole text being a branch's name counts
// too.
func (c *BranchConfig) keyword(text string) string {
	words := tokens(text)
	if len(words) == 0 {
		return ""
	}
	for _, b := range c.Branches {
		for _, kw := range b.Keywords {
			if containsRun(words, strings.Fields(kw)) {
				return b.IntegrationID
			}
		}
	}
	return c.byName(text)
}

func containsRun(words, run []string) bool {
	if len(run) == 0 {
		return false
	}
	for i := 0; i+len(run) <= len(words); i++ {
		match := true
		for j := range run {
			if words[i+j] != run[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// Menu is the text a customer is sent to choose their branch.
func (c *BranchConfig) Menu() string {
	intro := c.MenuText
	if intro == "" {
		intro = "Здравствуйте! Выберите филиал — ответьте цифрой:"
		if c.Language == "en" {
			intro = "Hello! Please choose a branch — reply with its number:"
		}
	}
	var b strings.Builder
	b.WriteString(intro)
	for i, br := range c.Branches {
		fmt.Fprintf(&b, "\n%d — %s", i+1, br.Name)
	}
	return b.String()
}

// parseConfig reads a stored routing row.
func parseConfig(r *store.ChannelRouting) (*BranchConfig, error) {
	c := &BranchConfig{}
	if r.Config != "" {
		if err := json.Unmarshal([]byte(r.Config), c); err != nil {
			return nil, fmt.Errorf("routing: config of channel %s: %w", r.ChannelID, err)
		}
	}
	c.Mode = r.Mode
	if c.Language == "" {
		c.Language = "ru"
	}
	if c.Branches == nil {
		c.Branches = []Branch{}
	}
	return c, nil
}

// ---- the ingest side ----

type menuJob struct {
	ChannelID string `json:"channel_id"`
	ContactID string `json:"contact_id"`
}

// MenuSender sends a text to a channel's customer: what routing needs of
// messaging to send the branch menu. internal/app wires it with the
// messaging service, so routing does not import messaging.
type MenuSender interface {
	// SendText queues text to the customer; onStored, when not nil, runs
	// in the transaction that stores the message (a job ends there).
	SendText(ctx context.Context, channelID, to, text string, onStored func(tx *gorm.DB) error) error
}

// SetMenuSender wires the sender of branch menus; without one a channel in
// branch mode holds customers who have to choose (the job retries).
func (r *Router) SetMenuSender(m MenuSender) { r.menus = m }

// branchBindings narrows a channel's bindings to the customer's branch
// when the channel is in branch mode (other modes pass them through), and
// does the choosing: it assigns a branch when a rule picks one, and
// enqueues the menu when the customer has to choose. It runs in the
// ingest transaction; the menu itself goes out from a queue job. rt is
// the channel's routing, read with bindings.
func (r *Router) branchBindings(tx *gorm.DB, ch *store.Channel, m *store.Message, rt *store.ChannelRouting, bindings []store.StatedBinding) ([]store.StatedBinding, error) {
	if rt.Mode != store.RoutingBranch {
		return bindings, nil
	}
	cfg, err := parseConfig(rt)
	if err != nil {
		return nil, err
	}
	bound := make([]string, len(bindings))
	for i, b := range bindings {
		bound[i] = b.IntegrationID
	}
	cfg.keepBound(bound)
	cur, err := store.BranchOf(tx, ch.ID, m.ContactID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	cu := Customer{}
	if cur != nil {
		cu.Branch = cur.IntegrationID
	}
	if m.Direction != store.Inbound {
		// An answer counts in the customer's branch only; one to a
		// customer still choosing (the menu) counts nowhere.
		return only(bindings, cu.Branch), nil
	}
	var contact *store.Contact
	var prompt *store.BranchPrompt
	if cu.Branch == "" || !cfg.has(cu.Branch) {
		if contact, err = store.ContactTx(tx, m.ContactID); err != nil {
			return nil, fmt.Errorf("routing: branch of contact: %w", err)
		}
		if ch.Type == string(channel.WhatsApp) {
			cu.Phone = "+" + contact.ExternalID
		}
		if prompt, err = store.PromptOf(tx, ch.ID, m.ContactID); err != nil {
			return nil, err
		}
		if prompt != nil {
			cu.MenusSent = prompt.MenusSent
		}
		if cu.Previous, err = store.DialogIntegrations(tx, ch.ID, m.ContactID); err != nil {
			return nil, err
		}
	}
	d := cfg.Decide(cu, m.Text)
	switch {
	case d.Source == SourceSticky:
	case d.IntegrationID != "" && cur != nil:
		// The customer's branch left the configuration: the new one
		// takes them from now on.
		if _, err := store.MoveBranchTx(tx, ch.ID, m.ContactID, d.IntegrationID, d.Source); err != nil {
			return nil, err
		}
	case d.IntegrationID != "":
		// What the customer wrote while choosing goes with them.
		cb, assigned, err := store.AssignBranch(tx, ch.ID, m.ContactID, d.IntegrationID, d.Source, contact.CreatedAt)
		if err != nil {
			return nil, err
		}
		d.IntegrationID = cb.IntegrationID
		if assigned {
			// The loop in MessageStored records this message and
			// enqueues the mirroring of all.
			if err := takeHeld(tx, only(bindings, cb.IntegrationID), m.ContactID, prompt, m.ID, false); err != nil {
				return nil, err
			}
		}
	case d.SendMenu:
		counted, err := store.CountMenu(tx, ch.ID, m.ContactID, MaxMenus, m.CreatedAt)
		if err != nil || !counted {
			return nil, err
		}
		_, err = queue.Enqueue(tx, queue.NewJob{Kind: JobBranchMenu, WorkspaceID: ch.WorkspaceID, Lane: ch.ID,
			Key: "branch:" + ch.ID + ":" + m.ContactID, Payload: menuJob{ChannelID: ch.ID, ContactID: m.ContactID}, MaxAttempts: 10})
		if err != nil {
			return nil, fmt.Errorf("routing: enqueue branch menu: %w", err)
		}
	}
	return only(bindings, d.IntegrationID), nil
}

// takeHeld gives a branch the messages its new customer wrote while
// choosing (since their prompt began; exceptID is the message being
// stored, which the caller records): they count in the branch's dialog
// (unread, waiting since the first), and with mirror a mirror job is
// queued for them and their notices armed behind it (outside ingest,
// where no later step does either). b is the branch's binding (none:
// nothing to do).
func takeHeld(tx *gorm.DB, b []store.StatedBinding, contactID string, p *store.BranchPrompt, exceptID string, mirror bool) error {
	if p == nil || len(b) == 0 {
		return nil
	}
	held, err := store.HeldInbound(tx, b[0].ChannelID, contactID, p.CreatedAt)
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	k := store.DialogKey{WorkspaceID: b[0].WorkspaceID, IntegrationID: b[0].IntegrationID, ChannelID: b[0].ChannelID, ContactID: contactID}
	for i := range held {
		if held[i].ID == exceptID {
			continue
		}
		if err := store.DialogInbound(tx, k, held[i].CreatedAt, wantsAnswer(&held[i])); err != nil {
			return fmt.Errorf("routing: %w", err)
		}
	}
	others := slices.ContainsFunc(held, func(h store.Message) bool { return h.ID != exceptID })
	if others && b[0].Live() {
		// A mirror job carries its own message only: the held ones go
		// with a sweep of the binding.
		if err := enqueueMirror(tx, b[0].WorkspaceID, b[0].ChannelID, b[0].ID, ""); err != nil {
			return err
		}
	}
	if !mirror || len(held) == 0 {
		return nil
	}
	return armBinding(tx, &b[0], b[0].ChannelID, contactID, nil)
}

// releaseHeld gives every binding of a channel leaving branch mode the
// customers still choosing: what they wrote meanwhile counts in each
// binding's dialog, is mirrored and announced, as for a customer moved to
// a branch; their prompts end.
func releaseHeld(tx *gorm.DB, channelID string) error {
	prompts, err := store.ChannelPrompts(tx, channelID)
	if err != nil || len(prompts) == 0 {
		return err
	}
	bindings, err := store.AllBindingsForChannel(tx, channelID)
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	for i := range prompts {
		for _, b := range bindings {
			if err := takeHeld(tx, []store.StatedBinding{b}, prompts[i].ContactID, &prompts[i], "", true); err != nil {
				return err
			}
		}
	}
	return nil
}

// only keeps the binding of one integration ("" keeps none).
func only(bindings []store.StatedBinding, integrationID string) []store.StatedBinding {
	for _, b := range bindings {
		if integrationID != "" && b.IntegrationID == integrationID {
			return []store.StatedBinding{b}
		}
	}
	return nil
}

// handleBranchMenu sends the menu to a customer who has to choose, unless
// they chose (or were moved) since it was queued.
func (r *Router) handleBranchMenu(ctx context.Context, j *queue.Job) error {
	var p menuJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	if _, err := r.store.CustomerBranchOf(ctx, p.ChannelID, p.ContactID); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	rt, err := r.store.ChannelRoutingOf(ctx, p.ChannelID)
	if err != nil {
		return err
	}
	if rt.Mode != store.RoutingBranch {
		return nil // switched back to "all" meanwhile
	}
	cfg, err := parseConfig(rt)
	if err != nil {
		return queue.Permanent(err)
	}
	bound, err := r.store.BoundIntegrationIDs(ctx, p.ChannelID)
	if err != nil {
		return err
	}
	// Numbered as branchBindings reads the answer.
	cfg.keepBound(bound)
	ch, err := r.store.GetChannel(ctx, store.All, p.ChannelID)
	if err != nil {
		return err
	}
	ct, err := r.store.ContactByID(ctx, p.ContactID)
	if err != nil {
		return err
	}
	if r.menus == nil {
		return queue.RetryAfter(parkDelay, errors.New("routing: no menu sender wired"))
	}
	to := ct.ExternalID
	if ch.Type == string(channel.WhatsApp) {
		to = "+" + to
	}
	// The job ends in the commit of the menu's message.
	end := func(tx *gorm.DB) error { return queue.Done(tx, j) }
	if err := r.menus.SendText(ctx, ch.ID, to, cfg.Menu(), end); err != nil {
		if fe := fault.As(err); fe != nil {
			// Refused for good (window closed, channel disabled): the
			// customer stays held until they write again.
			r.log.Warn("routing: branch menu refused", "channel_id", ch.ID, "contact_id", ct.ID, "code", fe.Code)
			return nil
		}
		return err
	}
	return nil
}

// ---- the API side ----

// BranchRouting reads a channel's routing for the API; a channel never
// configured is mode "all" with no branches.
func BranchRouting(ctx context.Context, st *store.Store, scope store.Scope, channelID string) (*BranchConfig, error) {
	if _, err := st.GetChannel(ctx, scope, channelID); err != nil {
		return nil, err
	}
	rt, err := st.ChannelRoutingOf(ctx, channelID)
	if err != nil {
		return nil, err
	}
	return parseConfig(rt)
}

// PutBranchRouting validates and stores a channel's routing; a refused one
// changes nothing. Customers already in a branch stay there (sticky) while
// their branch is in the configuration.
func PutBranchRouting(ctx context.Context, st *store.Store, scope store.Scope, channelID string, c BranchConfig) (*BranchConfig, error) {
	ch, err := st.GetChannel(ctx, scope, channelID)
	if err != nil {
		return nil, err
	}
	ws, err := st.GetWorkspace(ctx, store.All, ch.WorkspaceID)
	if err != nil {
		return nil, err
	}
	bound, err := st.BoundIntegrationIDs(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	norm, err := c.Validate(bound, phone.Options{Trunk8: ws.PhoneTrunk8, Region: ws.PhoneRegion})
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(norm)
	if err != nil {
		return nil, err
	}
	err = st.Tx(ctx, func(tx *gorm.DB) error {
		old, err := store.RoutingOf(tx, ch.ID)
		if err != nil {
			return err
		}
		if err := st.PutRoutingTx(tx, &store.ChannelRouting{ChannelID: ch.ID, Mode: norm.Mode, Config: string(raw)}); err != nil {
			return err
		}
		if old.Mode == store.RoutingBranch && norm.Mode != store.RoutingBranch {
			// Customers held while choosing go to every CRM now.
			return releaseHeld(tx, ch.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &norm, nil
}

// CustomerBranch is a customer's branch as the API shows it.
type CustomerBranch struct {
	CustomerID    string `json:"customer_id"`
	IntegrationID string `json:"integration_id"`
	Name          string `json:"name"`
	Source        string `json:"source"`
	// Since is when the branch took the customer (a move's time, or the
	// first message it took); nil while the customer has no branch.
	Since *time.Time `json:"since"`
}

// findCustomer finds a channel in branch mode and one of its customers by
// the id the API shows (wa_id, Instagram-scoped id); on WhatsApp a number
// written as people write it is found too.
func findCustomer(ctx context.Context, st *store.Store, scope store.Scope, channelID, customerID string) (*store.Channel, *BranchConfig, *store.Contact, error) {
	ch, err := st.GetChannel(ctx, scope, channelID)
	if err != nil {
		return nil, nil, nil, err
	}
	rt, err := st.ChannelRoutingOf(ctx, ch.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	if rt.Mode != store.RoutingBranch {
		return nil, nil, nil, fault.New(fault.Conflict, CodeNotBranchMode, "the channel's routing is not \"branch\": PUT /api/v1/channels/"+ch.ID+"/routing first")
	}
	cfg, err := parseConfig(rt)
	if err != nil {
		return nil, nil, nil, err
	}
	ct, err := st.ContactOnChannel(ctx, ch.ID, customerID)
	if errors.Is(err, store.ErrNotFound) && ch.Type == string(channel.WhatsApp) && len(customerID) <= maxNumberInputLen {
		ws, werr := st.GetWorkspace(ctx, store.All, ch.WorkspaceID)
		if werr != nil {
			return nil, nil, nil, werr
		}
		if e164, perr := phone.Normalize(customerID, phone.Options{Trunk8: ws.PhoneTrunk8, Region: ws.PhoneRegion}); perr == nil {
			ct, err = st.ContactOnChannel(ctx, ch.ID, phone.Digits(e164))
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil, fault.Newf(fault.NotFound, CodeCustomerNotFound, "customer_id: the channel has no customer %q", customerID)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return ch, cfg, ct, nil
}

func (c *BranchConfig) view(ct *store.Contact, cb *store.CustomerBranch) *CustomerBranch {
	v := &CustomerBranch{CustomerID: ct.ExternalID}
	if cb == nil {
		return v
	}
	since := cb.Since.UTC()
	v.IntegrationID, v.Source, v.Since = cb.IntegrationID, cb.Source, &since
	for _, b := range c.Branches {
		if b.IntegrationID == cb.IntegrationID {
			v.Name = b.Name
		}
	}
	return v
}

// GetCustomerBranch reads a customer's branch; IntegrationID "" is a
// customer still choosing.
func GetCustomerBranch(ctx context.Context, st *store.Store, scope store.Scope, channelID, customerID string) (*CustomerBranch, error) {
	_, cfg, ct, err := findCustomer(ctx, st, scope, channelID, customerID)
	if err != nil {
		return nil, err
	}
	cb, err := st.CustomerBranchOf(ctx, channelID, ct.ID)
	if errors.Is(err, store.ErrNotFound) {
		return cfg.view(ct, nil), nil
	}
	if err != nil {
		return nil, err
	}
	return cfg.view(ct, cb), nil
}

// MoveCustomer puts a customer in another branch: their later messages go
// there; the old branch keeps its CRM records but no longer sees the
// customer (their dialog there is dropped).
func MoveCustomer(ctx context.Context, st *store.Store, scope store.Scope, channelID, customerID, integrationID string) (*CustomerBranch, error) {
	_, cfg, ct, err := findCustomer(ctx, st, scope, channelID, customerID)
	if err != nil {
		return nil, err
	}
	if !cfg.has(integrationID) {
		return nil, invalid(CodeBranchNotBound, "integration_id", "%q is not the integration of one of the channel's branches", integrationID)
	}
	var cb *store.CustomerBranch
	err = st.Tx(ctx, func(tx *gorm.DB) error {
		return moveTx(tx, channelID, ct.ID, integrationID, store.BranchByMove, &cb)
	})
	if err != nil {
		return nil, err
	}
	return cfg.view(ct, cb), nil
}

// ClaimOutbound runs in the transaction of a message a CRM user writes to
// a channel's customer (the Bitrix24 card tab; the amoCRM widget later):
// in branch mode a customer of another branch is refused (403
// customer_other_branch: their answers would go to their own branch, not
// to the writer), and a customer without a branch becomes the writer's
// (a branch that writes first keeps the customer). Other modes pass.
func ClaimOutbound(tx *gorm.DB, integrationID, channelID, contactID string) error {
	rt, err := store.RoutingOf(tx, channelID)
	if err != nil || rt.Mode != store.RoutingBranch {
		return err
	}
	cfg, err := parseConfig(rt)
	if err != nil {
		return err
	}
	refuse := fault.New(fault.Forbidden, CodeOtherBranch, "the customer belongs to another branch of this channel")
	if !cfg.has(integrationID) {
		return refuse
	}
	cur, err := store.BranchOf(tx, channelID, contactID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return moveTx(tx, channelID, contactID, integrationID, store.BranchByOutbound, nil)
	case err != nil:
		return err
	case cur.IntegrationID != integrationID && cfg.has(cur.IntegrationID):
		return refuse
	case cur.IntegrationID != integrationID:
		// Their branch left the configuration: the writer takes them.
		return moveTx(tx, channelID, contactID, integrationID, store.BranchByOutbound, nil)
	}
	return nil
}

// moveTx puts a customer in a branch outside the rules (an admin's move,
// a CRM writing first). A customer still choosing brings what they wrote
// meanwhile: it counts in the branch's dialog and is mirrored there now,
// not only with their next message. out, when not nil, gets the result.
func moveTx(tx *gorm.DB, channelID, contactID, integrationID, source string, out **store.CustomerBranch) error {
	prompt, err := store.PromptOf(tx, channelID, contactID)
	if err != nil {
		return err
	}
	_, err = store.BranchOf(tx, channelID, contactID)
	choosing := errors.Is(err, store.ErrNotFound)
	if err != nil && !choosing {
		return err
	}
	cb, err := store.MoveBranchTx(tx, channelID, contactID, integrationID, source)
	if err != nil {
		return err
	}
	if out != nil {
		*out = cb
	}
	if !choosing {
		return nil
	}
	bindings, err := store.AllBindingsForChannel(tx, channelID)
	if err != nil {
		return err
	}
	return takeHeld(tx, only(bindings, integrationID), contactID, prompt, "", true)
}
