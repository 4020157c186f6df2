package b24sim

import (
	"cmp"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Entity is a CRM record (contact, lead or deal) as crm.*.get returns it:
// scalar fields are strings ("ID": "37", "OPENED": "Y"), multifields (PHONE,
// EMAIL, WEB, IM) are []map[string]any with ID, VALUE_TYPE, VALUE, TYPE_ID.
type Entity map[string]any

// Field returns a scalar field as a string ("" when absent).
func (e Entity) Field(name string) string { return str(e[name]) }

// Values returns the VALUEs of a multifield such as PHONE.
func (e Entity) Values(multifield string) []string {
	var out []string
	items, _ := e[multifield].([]map[string]any)
	for _, it := range items {
		out = append(out, str(it["VALUE"]))
	}
	return out
}

func (e Entity) clone() Entity {
	out := make(Entity, len(e))
	for k, v := range e {
		if items, ok := v.([]map[string]any); ok {
			cp := make([]map[string]any, len(items))
			for i, it := range items {
				cp[i] = cloneMap(it)
			}
			v = cp
		}
		out[k] = v
	}
	return out
}

type entityKind int

const (
	kindContact entityKind = iota
	kindLead
	kindDeal
)

func (k entityKind) name() string {
	return [...]string{"CONTACT", "LEAD", "DEAL"}[k]
}

var multifields = []string{"PHONE", "EMAIL", "WEB", "IM"}

type entityTable struct {
	name string
	seq  int
	rows []Entity
}

func newEntityTable(name string, seq int) *entityTable { return &entityTable{name: name, seq: seq} }

func (t *entityTable) byID(id int) Entity {
	want := strconv.Itoa(id)
	for _, r := range t.rows {
		if r.Field("ID") == want {
			return r
		}
	}
	return nil
}

func (p *Portal) table(k entityKind) *entityTable {
	switch k {
	case kindLead:
		return p.leads
	case kindDeal:
		return p.deals
	}
	return p.contacts
}

func (p *Portal) snapshot(k entityKind) []Entity {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	t := p.table(k)
	out := make([]Entity, 0, len(t.rows))
	for _, r := range t.rows {
		out = append(out, r.clone())
	}
	return out
}

// Contacts, Leads and Deals return copies of the CRM records, by id.
func (p *Portal) Contacts() []Entity { return p.snapshot(kindContact) }
func (p *Portal) Leads() []Entity    { return p.snapshot(kindLead) }
func (p *Portal) Deals() []Entity    { return p.snapshot(kindDeal) }

// AddContact seeds a contact as if created in the UI (no event is posted)
// and returns its id. fields use REST names; PHONE/EMAIL may be given as
// []map[string]any{{"VALUE": ..., "VALUE_TYPE": ...}} or a plain string.
func (s *Server) AddContact(memberID string, fields map[string]any) int {
	return s.seed(memberID, kindContact, fields)
}

// AddLead seeds a lead; see AddContact.
func (s *Server) AddLead(memberID string, fields map[string]any) int {
	return s.seed(memberID, kindLead, fields)
}

// AddDeal seeds a deal; see AddContact.
func (s *Server) AddDeal(memberID string, fields map[string]any) int {
	return s.seed(memberID, kindDeal, fields)
}

func (s *Server) seed(memberID string, k entityKind, fields map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	f := asArray(asPHP(fields))
	if f == nil {
		f = newPHPArray()
	}
	row := p.newEntityLocked(k, f, p.adminID, s.clock())
	return intval(row["ID"])
}

func (p *Portal) date(t time.Time) string { return t.In(p.s.loc).Format(isoLayout) }

// newEntityLocked creates a record with Bitrix24's defaults.
func (p *Portal) newEntityLocked(k entityKind, fields *phpArray, userID int, now time.Time) Entity {
	t := p.table(k)
	t.seq++
	id := strconv.Itoa(t.seq)
	uid := strconv.Itoa(userID)
	row := Entity{
		"ID": id, "OPENED": "Y", "ASSIGNED_BY_ID": uid, "CREATED_BY_ID": uid, "MODIFY_BY_ID": uid,
		"DATE_CREATE": p.date(now), "DATE_MODIFY": p.date(now), "SOURCE_ID": "", "SOURCE_DESCRIPTION": "",
		"COMMENTS": "", "ORIGINATOR_ID": "", "ORIGIN_ID": "",
	}
	switch k {
	case kindContact:
		row["NAME"], row["LAST_NAME"], row["SECOND_NAME"], row["TYPE_ID"] = "", "", "", "CLIENT"
	case kindLead:
		row["TITLE"], row["NAME"], row["LAST_NAME"], row["SECOND_NAME"] = "Lead #"+id, "", "", ""
		row["STATUS_ID"], row["CONTACT_ID"], row["COMPANY_ID"] = "NEW", nil, ""
	case kindDeal:
		row["TITLE"], row["TYPE_ID"], row["CATEGORY_ID"], row["STAGE_ID"] = "Deal #"+id, "SALE", "0", ""
		// CONTACT_ID is null until a contact is bound, as crm.deal.get shows.
		row["CONTACT_ID"], row["COMPANY_ID"], row["OPPORTUNITY"], row["CURRENCY_ID"] = nil, "0", "0.00", "RUB"
		row["BEGINDATE"], row["CLOSEDATE"] = p.date(now), p.date(now.AddDate(0, 0, 7))
	}
	p.applyFieldsLocked(k, row, fields, now)
	t.rows = append(t.rows, row)
	return row
}

// applyFieldsLocked writes REST fields into a record: scalars as strings,
// multifields merged by ID (a value without ID is added, an ID with an
// empty VALUE deletes), then derived fields recomputed. A deal's contacts
// follow CCrmDeal: CONTACT_IDS replaces the bindings (first = primary);
// CONTACT_ID alone adds that contact if missing and makes it primary;
// CONTACT_ID always shows the primary contact (null without contacts).
func (p *Portal) applyFieldsLocked(k entityKind, row Entity, fields *phpArray, now time.Time) {
	var contactIDs []int
	setContactIDs, setContactID := false, false
	for _, key := range fields.Keys() {
		v, _ := fields.Get(key)
		name := strings.ToUpper(key)
		switch {
		case slices.Contains(multifields, name):
			row[name] = p.mergeMultifield(name, row[name], v)
		case name == "ID":
			// read-only
		case name == "CONTACT_IDS" && k == kindDeal:
			setContactIDs = true
			contactIDs = nil
			vals := asArray(v).Values()
			if _, isArr := v.(*phpArray); !isArr && str(v) != "" {
				vals = []any{v}
			}
			for _, x := range vals {
				if id := intval(x); id > 0 && !slices.Contains(contactIDs, id) {
					contactIDs = append(contactIDs, id)
				}
			}
		case name == "CONTACT_ID" && k == kindDeal:
			setContactID = true
			row[name] = str(v)
		default:
			if a, ok := v.(*phpArray); ok {
				row[name] = plain(a)
			} else {
				row[name] = str(v)
			}
		}
	}
	switch k {
	case kindDeal:
		id := row.Field("ID")
		switch {
		case setContactIDs:
			p.dealContacts[id] = contactIDs
		case setContactID:
			if cid := intval(row["CONTACT_ID"]); cid > 0 {
				bound := slices.DeleteFunc(slices.Clone(p.dealContacts[id]), func(x int) bool { return x == cid })
				p.dealContacts[id] = append([]int{cid}, bound...)
			} else {
				p.dealContacts[id] = nil
			}
		}
		if ids := p.dealContacts[id]; len(ids) > 0 {
			row["CONTACT_ID"] = strconv.Itoa(ids[0])
		} else {
			row["CONTACT_ID"] = nil
		}
		cat := intval(row["CATEGORY_ID"])
		row["CATEGORY_ID"] = strconv.Itoa(cat)
		if row.Field("STAGE_ID") == "" {
			row["STAGE_ID"] = stagePrefix(cat) + "NEW"
		}
		sem := p.semanticLocked(row.Field("STAGE_ID"), true)
		row["STAGE_SEMANTIC_ID"] = sem
		row["CLOSED"] = map[bool]string{true: "Y", false: "N"}[sem != "P"]
		row["IS_NEW"] = map[bool]string{true: "Y", false: "N"}[strings.HasSuffix(row.Field("STAGE_ID"), "NEW")]
	case kindLead:
		row["STATUS_SEMANTIC_ID"] = p.semanticLocked(row.Field("STATUS_ID"), false)
	}
	if k != kindDeal {
		row["HAS_PHONE"] = map[bool]string{true: "Y", false: "N"}[len(row.Values("PHONE")) > 0]
		row["HAS_EMAIL"] = map[bool]string{true: "Y", false: "N"}[len(row.Values("EMAIL")) > 0]
	}
	row["DATE_MODIFY"] = p.date(now)
}

// mergeMultifield applies a REST multifield value to the existing items.
func (p *Portal) mergeMultifield(name string, existing, v any) []map[string]any {
	items, _ := existing.([]map[string]any)
	var in []any
	switch t := v.(type) {
	case *phpArray:
		in = t.Values()
	case string:
		if t != "" {
			in = []any{phpListKV("VALUE", t)}
		}
	}
	for _, it := range in {
		id := childStr(it, "ID")
		value := childStr(it, "VALUE")
		if s, ok := it.(string); ok {
			value = s
		}
		vtype := childStr(it, "VALUE_TYPE")
		if id != "" {
			for i, old := range items {
				if str(old["ID"]) != id {
					continue
				}
				if value == "" {
					items = slices.Delete(items, i, i+1)
				} else {
					old["VALUE"] = value
					if vtype != "" {
						old["VALUE_TYPE"] = vtype
					}
				}
				break
			}
			continue
		}
		if value == "" {
			continue
		}
		if vtype == "" {
			vtype = map[string]string{"PHONE": "WORK", "EMAIL": "WORK", "WEB": "WORK", "IM": "OTHER"}[name]
		}
		p.seq.multifield++
		items = append(items, map[string]any{"ID": strconv.Itoa(p.seq.multifield), "VALUE_TYPE": vtype, "VALUE": value, "TYPE_ID": name})
	}
	return items
}

func phpListKV(k string, v any) *phpArray {
	a := newPHPArray()
	a.Set(k, v)
	return a
}

func stagePrefix(cat int) string {
	if cat == 0 {
		return ""
	}
	return "C" + strconv.Itoa(cat) + ":"
}

// semanticLocked returns P (in progress), S (success) or F (failure) for a
// deal stage or lead status.
func (p *Portal) semanticLocked(statusID string, deal bool) string {
	for _, st := range p.statuses {
		isStage := strings.HasPrefix(st.entityID, "DEAL_STAGE")
		if st.statusID == statusID && (deal == isStage) && (deal || st.entityID == "STATUS") {
			if st.semantics != "" {
				return st.semantics
			}
			return "P"
		}
	}
	switch {
	case strings.HasSuffix(statusID, "WON"), statusID == "CONVERTED":
		return "S"
	case strings.HasSuffix(statusID, "LOSE"), strings.HasSuffix(statusID, "APOLOGY"), statusID == "JUNK":
		return "F"
	}
	return "P"
}

func crmFields(c *call) (*phpArray, *apiError) {
	f := asArray(param(c.params, "fields"))
	if f == nil {
		return nil, errLegacyCRM("The parameter 'fields' must be array.")
	}
	return f, nil
}

func crmID(c *call) (int, *apiError) {
	id := intval(param(c.params, "id"))
	if id <= 0 {
		return 0, errLegacyCRM("The parameter id is invalid or not defined.")
	}
	return id, nil
}

func crmEvent(c *call, k entityKind, action string, id string) {
	var f formFields
	f.add("data[FIELDS][ID]", id)
	c.emit(pendingEvent{memberID: c.p.memberID, event: "ONCRM" + k.name() + action, data: f, mode: authUser, userID: c.userID})
}

func entityAdd(k entityKind) methodFunc {
	return func(c *call) (any, *page, *apiError) {
		f, err := crmFields(c)
		if err != nil {
			return nil, nil, err
		}
		row := c.p.newEntityLocked(k, f, c.userID, c.now)
		crmEvent(c, k, "ADD", row.Field("ID"))
		return intval(row["ID"]), nil, nil
	}
}

func entityGet(k entityKind) methodFunc {
	return func(c *call) (any, *page, *apiError) {
		id, err := crmID(c)
		if err != nil {
			return nil, nil, err
		}
		row := c.p.table(k).byID(id)
		if row == nil {
			return nil, nil, errLegacyCRM("Not found")
		}
		return map[string]any(row.clone()), nil, nil
	}
}

func entityUpdate(k entityKind) methodFunc {
	return func(c *call) (any, *page, *apiError) {
		id, err := crmID(c)
		if err != nil {
			return nil, nil, err
		}
		f, err := crmFields(c)
		if err != nil {
			return nil, nil, err
		}
		row := c.p.table(k).byID(id)
		if row == nil {
			return nil, nil, errLegacyCRM("Not found")
		}
		row["MODIFY_BY_ID"] = strconv.Itoa(c.userID)
		c.p.applyFieldsLocked(k, row, f, c.now)
		crmEvent(c, k, "UPDATE", row.Field("ID"))
		return true, nil, nil
	}
}

func entityList(k entityKind) methodFunc {
	return func(c *call) (any, *page, *apiError) {
		rows := filterRows(c.p.table(k).rows, asArray(param(c.params, "filter")))
		sortRows(rows, asArray(param(c.params, "order")))
		from, to, pg := listPage(c.params, len(rows))
		sel := selectFields(param(c.params, "select"))
		out := make([]any, 0, to-from)
		for _, r := range rows[from:to] {
			out = append(out, map[string]any(project(r, sel)))
		}
		return out, pg, nil
	}
}

// filterOps are the key prefixes of the old CRM filter, longest first.
var filterOps = []string{">=", "<=", "!=", "!@", "=%", "%=", ">", "<", "!", "=", "%", "@"}

func filterRows(rows []Entity, filter *phpArray) []Entity {
	out := make([]Entity, 0, len(rows))
	for _, r := range rows {
		if matchFilter(r, filter) {
			out = append(out, r)
		}
	}
	return out
}

func matchFilter(r Entity, filter *phpArray) bool {
	for _, key := range filter.Keys() {
		want, _ := filter.Get(key)
		op := ""
		for _, o := range filterOps {
			if strings.HasPrefix(key, o) {
				op, key = o, key[len(o):]
				break
			}
		}
		if !matchCond(r, strings.ToUpper(key), op, want) {
			return false
		}
	}
	return true
}

func fieldValues(r Entity, field string) []string {
	if slices.Contains(multifields, field) {
		return r.Values(field)
	}
	if v, ok := r[field]; ok {
		if l, ok := v.([]any); ok {
			out := make([]string, 0, len(l))
			for _, x := range l {
				out = append(out, str(x))
			}
			return out
		}
		return []string{str(v)}
	}
	return []string{""}
}

func matchCond(r Entity, field, op string, want any) bool {
	var wants []string
	if a, ok := want.(*phpArray); ok {
		for _, v := range a.Values() {
			wants = append(wants, str(v))
		}
	} else {
		wants = []string{str(want)}
	}
	have := fieldValues(r, field)
	eq := func(h, w string) bool {
		if field == "PHONE" {
			return normalizePhone(h) == normalizePhone(w) && normalizePhone(w) != ""
		}
		return strings.EqualFold(h, w)
	}
	any2 := func(pred func(h, w string) bool) bool {
		for _, h := range have {
			for _, w := range wants {
				if pred(h, w) {
					return true
				}
			}
		}
		return false
	}
	switch op {
	case "", "=", "@":
		return any2(eq)
	case "!", "!=", "!@":
		return !any2(eq)
	case "%", "=%", "%=":
		return any2(func(h, w string) bool { return strings.Contains(strings.ToLower(h), strings.ToLower(w)) })
	case ">", ">=", "<", "<=":
		return any2(func(h, w string) bool {
			c := compareValues(h, w)
			switch op {
			case ">":
				return c > 0
			case ">=":
				return c >= 0
			case "<":
				return c < 0
			}
			return c <= 0
		})
	}
	return false
}

// compareValues compares numerically when both sides are numbers, as the
// database would for numeric columns, else as strings.
func compareValues(a, b string) int {
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	if ea == nil && eb == nil {
		return cmp.Compare(fa, fb)
	}
	return strings.Compare(a, b)
}

func sortRows(rows []Entity, order *phpArray) {
	keys := order.Keys()
	if len(keys) == 0 {
		keys = []string{"ID"}
		order = phpListKV("ID", "ASC")
	}
	slices.SortStableFunc(rows, func(a, b Entity) int {
		for _, k := range keys {
			dir, _ := order.Get(k)
			f := strings.ToUpper(k)
			c := compareValues(a.Field(f), b.Field(f))
			if strings.EqualFold(str(dir), "DESC") {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

type selection struct {
	all, uf bool
	fields  []string
}

func selectFields(v any) selection {
	var sel selection
	a := asArray(v)
	if a.Len() == 0 {
		sel.all = true
		return sel
	}
	for _, x := range a.Values() {
		f := strings.ToUpper(str(x))
		switch f {
		case "*":
			sel.all = true
		case "UF_*":
			sel.uf = true
		default:
			sel.fields = append(sel.fields, f)
		}
	}
	return sel
}

// project applies select: "*" (the default) is every scalar field except
// user fields; multifields and UF_* only when named, as in Bitrix24.
func project(r Entity, sel selection) Entity {
	out := Entity{"ID": r["ID"]}
	for k, v := range r {
		isMulti := slices.Contains(multifields, k)
		isUF := strings.HasPrefix(k, "UF_")
		switch {
		case slices.Contains(sel.fields, k):
		case sel.all && !isMulti && !isUF:
		case sel.uf && isUF:
		default:
			continue
		}
		out[k] = v
	}
	return out.clone()
}

// normalizePhone reduces a phone to its digits, dropping an extension, so
// that "+7 (916) 123-45-67 ext. 12" matches "79161234567".
func normalizePhone(s string) string {
	low := strings.ToLower(s)
	for _, sep := range []string{"ext", "доб", "#", ",", ";", "x"} {
		if i := strings.Index(low, sep); i >= 0 {
			low = low[:i]
		}
	}
	var b strings.Builder
	for _, r := range low {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// dedupePhone is the key Bitrix24's duplicate index keeps for a phone
// (crm's DuplicateCommunicationCriterion::normalizePhone, which calls the
// main module's NormalizePhone): the digits without the extension, then,
// for ten digits or more, a leading 00 or 011 (international prefixes)
// or 0 dropped and a leading 8 read as Russia's 7 — except 80, 81, 82 —
// while "+8…" keeps its 8 (it becomes 00… first). Nothing else is
// guessed: "9123456789" stays ten digits and does not find "+7 912 …",
// and "8613800138000" written without '+' is indexed as 7613800138000.
func dedupePhone(s string) string {
	trimmed := strings.TrimSpace(s)
	d := normalizePhone(trimmed)
	if len(trimmed) >= 10 && strings.HasPrefix(trimmed, "+8") {
		d = "00" + d
	}
	if len(d) < 10 {
		return d
	}
	switch {
	case strings.HasPrefix(d, "80"), strings.HasPrefix(d, "81"), strings.HasPrefix(d, "82"):
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	case strings.HasPrefix(d, "011"):
		d = d[3:]
	case strings.HasPrefix(d, "8"):
		d = "7" + d[1:]
	case strings.HasPrefix(d, "0"):
		d = d[1:]
	}
	return d
}

// mFindByComm is crm.duplicate.findbycomm (contract §5).
func mFindByComm(c *call) (any, *page, *apiError) {
	typ := strings.ToUpper(paramStr(c.params, "type"))
	if typ != "PHONE" && typ != "EMAIL" {
		return nil, nil, errLegacyCRM("Communication type '" + typ + "' is not supported in current context.")
	}
	vals := asArray(param(c.params, "values"))
	if vals.Len() == 0 {
		return nil, nil, errLegacyCRM("Communication values is not defined.")
	}
	if vals.Len() > 20 {
		return nil, nil, errLegacyCRM("Communication values too many. Max count is 20.")
	}
	norm := func(s string) string {
		if typ == "PHONE" {
			return dedupePhone(s)
		}
		return strings.ToLower(strings.TrimSpace(s))
	}
	wanted := map[string]bool{}
	for _, v := range vals.Values() {
		if n := norm(str(v)); n != "" {
			wanted[n] = true
		}
	}
	types := []entityKind{kindLead, kindContact}
	if et := strings.ToUpper(paramStr(c.params, "entity_type")); et != "" {
		switch et {
		case "LEAD":
			types = []entityKind{kindLead}
		case "CONTACT":
			types = []entityKind{kindContact}
		case "COMPANY":
			types = nil // companies are not simulated
		default:
			return nil, nil, errLegacyCRM("Entity type '" + et + "' is not supported in current context.")
		}
	}
	out := newPHPArray()
	for _, k := range types {
		var ids []int
		for _, r := range c.p.table(k).rows {
			for _, v := range r.Values(typ) {
				if wanted[norm(v)] {
					ids = append(ids, intval(r["ID"]))
					break
				}
			}
		}
		if len(ids) == 0 {
			continue
		}
		if len(ids) > 20 {
			ids = ids[:20]
		}
		out.Set(k.name(), ids)
		if len(ids) >= 20 {
			break // Bitrix24 skips the remaining types
		}
	}
	return out, nil, nil
}

// crmStatus is a crm.status.list row (stages, lead statuses, sources...).
type crmStatus struct {
	id         int
	entityID   string
	statusID   string
	name       string
	sort       int
	system     bool
	categoryID int // -1 when not a deal stage
	color      string
	semantics  string // "", "S" or "F"
}

func (p *Portal) addStatusLocked(entityID, statusID, name string, sort int, system bool, cat int, color, sem string) *crmStatus {
	p.seq.status++
	st := &crmStatus{id: p.seq.status, entityID: entityID, statusID: statusID, name: name, sort: sort, system: system, categoryID: cat, color: color, semantics: sem}
	p.statuses = append(p.statuses, st)
	return st
}

func (p *Portal) seedStatuses() {
	for _, cat := range p.categories {
		p.seedDealStagesLocked(cat.ID)
	}
	for i, ls := range [][3]string{{"NEW", "Unassigned", ""}, {"IN_PROCESS", "In progress", ""}, {"PROCESSED", "Processed", ""}, {"JUNK", "Junk lead", "F"}, {"CONVERTED", "Good lead", "S"}} {
		p.addStatusLocked("STATUS", ls[0], p.localName("STATUS", ls[0], ls[1]), (i+1)*10, true, -1, "", ls[2])
	}
	for i, src := range []string{"CALL", "EMAIL", "WEB", "ADVERTISING", "PARTNER", "RECOMMENDATION", "TRADE_SHOW", "WEBFORM", "CALLBACK", "RC_GENERATOR", "STORE", "OTHER"} {
		p.addStatusLocked("SOURCE", src, titleCase(src), (i+1)*10, true, -1, "", "")
	}
	for i, t := range []string{"SALE", "COMPLEX", "GOODS", "SERVICES", "SERVICE"} {
		p.addStatusLocked("DEAL_TYPE", t, titleCase(t), (i+1)*10, true, -1, "", "")
	}
}

// seedDealStagesLocked adds a pipeline's stages: the default pipeline
// (0) gets Bitrix24's eight, another one NEW, PREPARATION, WON and LOSE
// with its C{id}: prefix.
func (p *Portal) seedDealStagesLocked(catID int) {
	stages := []struct {
		id, name, color, sem string
		sort                 int
		system               bool
	}{
		{"NEW", "New", "#39A8EF", "", 10, true},
		{"PREPARATION", "Preparing offer", "#2FC6F6", "", 20, false},
		{"PREPAYMENT_INVOICE", "Prepayment invoice", "#55D0E0", "", 30, false},
		{"EXECUTING", "In progress", "#47E4C2", "", 40, false},
		{"FINAL_INVOICE", "Final invoice", "#FFA900", "", 50, false},
		{"WON", "Deal won", "#7BD500", "S", 60, true},
		{"LOSE", "Deal lost", "#FF5752", "F", 70, true},
		{"APOLOGY", "Analyze failure", "#FF5752", "F", 80, false},
	}
	entity := "DEAL_STAGE"
	if catID != 0 {
		entity += "_" + strconv.Itoa(catID)
	}
	for _, st := range stages {
		if catID != 0 && !slices.Contains([]string{"NEW", "PREPARATION", "WON", "LOSE"}, st.id) {
			continue
		}
		p.addStatusLocked(entity, stagePrefix(catID)+st.id, p.localName("DEAL_STAGE", st.id, st.name), st.sort, st.system, catID, st.color, st.sem)
	}
}

// titleCase turns a code like TRADE_SHOW into "Trade show".
func titleCase(code string) string {
	s := strings.ToLower(strings.ReplaceAll(code, "_", " "))
	return strings.ToUpper(s[:1]) + s[1:]
}

func (st *crmStatus) row() map[string]any {
	r := map[string]any{
		"ID": strconv.Itoa(st.id), "ENTITY_ID": st.entityID, "STATUS_ID": st.statusID, "NAME": st.name,
		"NAME_INIT": "", "SORT": strconv.Itoa(st.sort), "SYSTEM": map[bool]string{true: "Y", false: "N"}[st.system],
	}
	if st.system {
		r["NAME_INIT"] = st.name
	}
	if st.categoryID >= 0 {
		r["CATEGORY_ID"] = strconv.Itoa(st.categoryID)
		r["COLOR"] = st.color
		if st.semantics != "" {
			r["SEMANTICS"] = st.semantics
		} else {
			r["SEMANTICS"] = nil
		}
		sem := map[string]string{"": "process", "S": "success", "F": "failure"}[st.semantics]
		r["EXTRA"] = map[string]any{"SEMANTICS": sem, "COLOR": st.color}
	}
	return r
}

func (st *crmStatus) entity() Entity {
	e := Entity{}
	for k, v := range st.row() {
		if k == "EXTRA" {
			continue
		}
		e[k] = v
	}
	return e
}

func mStatusList(c *call) (any, *page, *apiError) {
	rows := make([]Entity, 0, len(c.p.statuses))
	for _, st := range c.p.statuses {
		rows = append(rows, st.entity())
	}
	byID := map[string]*crmStatus{}
	for _, st := range c.p.statuses {
		byID[strconv.Itoa(st.id)] = st
	}
	rows = filterRows(rows, asArray(param(c.params, "filter")))
	order := asArray(param(c.params, "order"))
	if order.Len() == 0 {
		order = phpListKV("SORT", "ASC")
	}
	sortRows(rows, order)
	out := make([]any, 0, len(rows))
	for _, r := range rows {
		out = append(out, byID[r.Field("ID")].row())
	}
	return out, &page{total: len(out)}, nil
}

func mStatusAdd(c *call) (any, *page, *apiError) {
	f, err := crmFields(c)
	if err != nil {
		return nil, nil, err
	}
	entityID := strings.ToUpper(childStr(f, "ENTITY_ID"))
	statusID := strings.ToUpper(childStr(f, "STATUS_ID"))
	name := childStr(f, "NAME")
	switch {
	case entityID == "":
		return nil, nil, errLegacyCRM("The field ENTITY_ID is required.")
	case statusID == "":
		return nil, nil, errLegacyCRM("The field STATUS_ID is required.")
	case name == "":
		return nil, nil, errLegacyCRM("The field NAME is required.")
	}
	for _, st := range c.p.statuses {
		if st.entityID == entityID && st.statusID == statusID {
			return nil, nil, errLegacyCRM("The status with STATUS_ID '" + statusID + "' already exists.")
		}
	}
	cat := -1
	if strings.HasPrefix(entityID, "DEAL_STAGE") {
		cat = intval(strings.TrimPrefix(strings.TrimPrefix(entityID, "DEAL_STAGE"), "_"))
	}
	sort := intval(child(f, "SORT"))
	if sort == 0 {
		sort = 10 * (len(c.p.statuses) + 1)
	}
	st := c.p.addStatusLocked(entityID, statusID, name, sort, false, cat, childStr(f, "COLOR"), strings.ToUpper(childStr(f, "SEMANTICS")))
	return st.id, nil, nil
}

func mCategoryList(c *call) (any, *page, *apiError) {
	et := intval(param(c.params, "entityTypeId"))
	var cats []any
	switch et {
	case 2:
		sorted := slices.Clone(c.p.categories)
		slices.SortStableFunc(sorted, func(a, b DealCategory) int { return cmp.Compare(a.Sort, b.Sort) })
		for _, cat := range sorted {
			row := newPHPArray()
			row.Set("id", cat.ID)
			row.Set("name", cat.Name)
			row.Set("sort", cat.Sort)
			row.Set("entityTypeId", 2)
			row.Set("isDefault", map[bool]string{true: "Y", false: "N"}[cat.ID == 0])
			if cat.ID != 0 {
				row.Set("originId", "")
				row.Set("originatorId", "")
			}
			cats = append(cats, row)
		}
	case 3, 4:
		row := newPHPArray()
		row.Set("id", 0)
		row.Set("name", "General")
		row.Set("sort", 100)
		row.Set("entityTypeId", et)
		row.Set("isDefault", "Y")
		cats = append(cats, row)
	default:
		return nil, nil, newAPIError(400, "NOT_FOUND", "Entity type "+strconv.Itoa(et)+" does not support categories")
	}
	out := newPHPArray()
	out.Set("categories", cats)
	return out, &page{total: len(cats)}, nil
}

// TimelineComment is a crm.timeline.comment.add record.
type TimelineComment struct {
	ID         int
	EntityType string // lead, deal, contact, company, dynamic_N
	EntityID   int
	Comment    string
	Files      []TimelineFile
	AuthorID   int
	Created    time.Time
}

// TimelineFile is an attachment of a timeline comment, decoded.
type TimelineFile struct {
	Name    string
	Content []byte
}

// TimelineComments returns the comments added, oldest first.
func (p *Portal) TimelineComments() []TimelineComment {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return slices.Clone(p.timeline)
}

func (p *Portal) entityExistsLocked(typ string, id int) bool {
	switch typ {
	case "contact":
		return p.contacts.byID(id) != nil
	case "lead":
		return p.leads.byID(id) != nil
	case "deal":
		return p.deals.byID(id) != nil
	}
	return true // companies and smart processes are not simulated
}

// mTimelineCommentAdd requires the lowercase "fields" key (contract §5).
func mTimelineCommentAdd(c *call) (any, *page, *apiError) {
	v, _ := c.params.Get("fields")
	f := asArray(v)
	if f == nil {
		return nil, nil, errArgumentNull("fields")
	}
	entityID := intval(child(f, "ENTITY_ID"))
	typ := strings.ToLower(childStr(f, "ENTITY_TYPE"))
	comment := childStr(f, "COMMENT")
	switch {
	case entityID <= 0:
		return nil, nil, errArgumentNull("ENTITY_ID")
	case typ == "":
		return nil, nil, errArgumentNull("ENTITY_TYPE")
	case comment == "":
		return nil, nil, errArgumentNull("COMMENT")
	}
	known := typ == "lead" || typ == "deal" || typ == "contact" || typ == "company" || strings.HasPrefix(typ, "dynamic_")
	if !known || !c.p.entityExistsLocked(typ, entityID) {
		return nil, nil, errArgument("Entity not found: " + typ + " " + strconv.Itoa(entityID))
	}
	var files []TimelineFile
	for _, fv := range asArray(child(f, "FILES")).Values() {
		pair := asArray(fv).Values()
		if len(pair) < 2 {
			continue
		}
		content, err := base64.StdEncoding.DecodeString(str(pair[1]))
		if err != nil {
			return nil, nil, errArgument("FILES: content is not base64")
		}
		files = append(files, TimelineFile{Name: str(pair[0]), Content: content})
	}
	c.p.seq.timeline++
	c.p.timeline = append(c.p.timeline, TimelineComment{
		ID: c.p.seq.timeline, EntityType: typ, EntityID: entityID, Comment: comment,
		Files: files, AuthorID: c.userID, Created: c.now,
	})
	return c.p.seq.timeline, nil, nil
}

// Todo is a crm.activity.todo.add record.
type Todo struct {
	ID            int
	OwnerTypeID   int
	OwnerID       int
	Deadline      time.Time
	Title         string
	Description   string
	ResponsibleID int
	PingOffsets   []int
	ColorID       string
	Created       time.Time
}

// Todos returns the to-do activities added, oldest first.
func (p *Portal) Todos() []Todo {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return slices.Clone(p.todos)
}

func parseDeadline(s string, loc *time.Location) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "02.01.2006 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// mTodoAdd is crm.activity.todo.add, a new-style method: camelCase params
// and real numbers in the result.
func mTodoAdd(c *call) (any, *page, *apiError) {
	ownerType := intval(param(c.params, "ownerTypeId"))
	ownerID := intval(param(c.params, "ownerId"))
	deadlineRaw := paramStr(c.params, "deadline")
	switch {
	case ownerType <= 0:
		return nil, nil, errArgumentNull("ownerTypeId")
	case ownerID <= 0:
		return nil, nil, errArgumentNull("ownerId")
	case deadlineRaw == "":
		return nil, nil, errArgumentNull("deadline")
	}
	deadline, ok := parseDeadline(deadlineRaw, c.s.loc)
	if !ok {
		return nil, nil, errArgument("deadline is not a valid date/time")
	}
	typ := map[int]string{1: "lead", 2: "deal", 3: "contact", 4: "company"}[ownerType]
	if typ == "" || !c.p.entityExistsLocked(typ, ownerID) {
		return nil, nil, newAPIError(400, "NOT_FOUND", "Owner not found")
	}
	var pings []int
	for _, v := range asArray(param(c.params, "pingOffsets")).Values() {
		pings = append(pings, intval(v))
	}
	responsible := intval(param(c.params, "responsibleId"))
	if responsible == 0 {
		responsible = c.userID
	}
	c.p.seq.todo++
	c.p.todos = append(c.p.todos, Todo{
		ID: c.p.seq.todo, OwnerTypeID: ownerType, OwnerID: ownerID, Deadline: deadline,
		Title: paramStr(c.params, "title"), Description: paramStr(c.params, "description"),
		ResponsibleID: responsible, PingOffsets: pings, ColorID: paramStr(c.params, "colorId"), Created: c.now,
	})
	return map[string]any{"id": c.p.seq.todo}, nil, nil
}

// DealContacts returns the contact ids bound to a deal, the primary one
// first (what crm.deal.contact.items.get lists).
func (p *Portal) DealContacts(dealID int) []int {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return slices.Clone(p.dealContacts[strconv.Itoa(dealID)])
}

// mDealContactItemsGet is crm.deal.contact.items.get: the deal's contact
// bindings with integer ids, SORT in steps of 10 and the primary first.
func mDealContactItemsGet(c *call) (any, *page, *apiError) {
	id := intval(param(c.params, "id"))
	if id <= 0 {
		return nil, nil, errLegacyCRM("The parameter ownerEntityID is invalid or not defined.")
	}
	if c.p.deals.byID(id) == nil {
		return nil, nil, errLegacyCRM("Not found.")
	}
	ids := c.p.dealContacts[strconv.Itoa(id)]
	out := make([]any, 0, len(ids))
	for i, cid := range ids {
		row := newPHPArray()
		row.Set("CONTACT_ID", cid)
		row.Set("SORT", (i+1)*10)
		row.Set("ROLE_ID", 0)
		row.Set("IS_PRIMARY", map[bool]string{true: "Y", false: "N"}[i == 0])
		out = append(out, row)
	}
	return out, nil, nil
}
