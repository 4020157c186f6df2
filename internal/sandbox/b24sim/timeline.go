package b24sim

import (
	"slices"
	"strconv"
	"strings"
)

// mTimelineCommentList implements crm.timeline.comment.list: the comments
// of one record (filter ENTITY_ID and ENTITY_TYPE, both required as in
// Bitrix24), ordered by ID (ascending unless order ID is DESC), 50 a page.
func mTimelineCommentList(c *call) (any, *page, *apiError) {
	filter := asArray(param(c.params, "filter"))
	entityID := intval(child(filter, "ENTITY_ID"))
	typ := strings.ToLower(childStr(filter, "ENTITY_TYPE"))
	switch {
	case entityID <= 0:
		return nil, nil, errArgumentNull("ENTITY_ID")
	case typ == "":
		return nil, nil, errArgumentNull("ENTITY_TYPE")
	}
	var rows []TimelineComment
	for _, t := range c.p.timeline {
		if t.EntityID == entityID && t.EntityType == typ {
			rows = append(rows, t)
		}
	}
	if strings.EqualFold(childStr(asArray(param(c.params, "order")), "ID"), "DESC") {
		slices.Reverse(rows)
	}
	from, to, pg := listPage(c.params, len(rows))
	out := make([]any, 0, to-from)
	for _, t := range rows[from:to] {
		out = append(out, map[string]any{
			"ID": strconv.Itoa(t.ID), "ENTITY_ID": strconv.Itoa(t.EntityID), "ENTITY_TYPE": t.EntityType,
			"CREATED": t.Created.In(c.s.loc).Format(isoLayout), "COMMENT": t.Comment, "AUTHOR_ID": strconv.Itoa(t.AuthorID),
		})
	}
	return out, pg, nil
}

// FailAfterNext makes the next n calls of method on the portal do their
// work and then answer an error (HTTP status and body as FailNext), as a
// portal that times out after committing does. With method "batch" every
// command of the batch is applied and the whole call fails: the caller
// cannot know what landed.
func (s *Server) FailAfterNext(memberID, method string, n, status int, code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPortalLocked(memberID)
	p.failuresAfter = append(p.failuresAfter, &failure{method: normalizeMethod(method), n: n, err: newAPIError(status, code, description)})
}

func (p *Portal) takeFailureAfter(method string) *apiError {
	for i, f := range p.failuresAfter {
		if f.method == method && f.n > 0 {
			f.n--
			if f.n == 0 {
				p.failuresAfter = slices.Delete(p.failuresAfter, i, i+1)
			}
			e := *f.err
			return &e
		}
	}
	return nil
}

// RESTCalls counts the REST requests the portal received with a valid
// token since it was added (or since Reset): a batch is one, as it is one
// against the portal's limits.
func (s *Server) RESTCalls(memberID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustPortalLocked(memberID).restCalls
}
