package web

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// MirrorFlusher closes an integration's waiting hourly and daily mirror
// batches now (routing.Router).
type MirrorFlusher interface {
	Flush(ctx context.Context, scope store.Scope, integrationID string) (routing.FlushResult, error)
}

// flushMirror is POST /api/v1/integrations/{id}/mirror/flush: the waiting
// batches are closed at once (before maintenance, and in tests) and their
// writing to the CRM is queued; the answer says what was closed. Another
// workspace's integration is not found.
func (s *Server) flushMirror(c *gin.Context) {
	if s.d.Mirror == nil {
		fail(c, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	res, err := s.d.Mirror.Flush(c.Request.Context(), scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}
