package web

import (
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/store"
)

// serveMedia serves a stored file to whoever holds a valid signed link
// (CRMs fetch files by URL and cannot send our tokens).
func (s *Server) serveMedia(c *gin.Context) {
	id := c.Param("id")
	switch err := s.d.Signer.Verify(id, c.Query("exp"), c.Query("sig")); {
	case errors.Is(err, media.ErrExpired):
		fail(c, http.StatusGone, "link_expired", "this media link has expired")
		return
	case err != nil:
		fail(c, http.StatusForbidden, "bad_signature", "the media link signature is invalid")
		return
	}
	md, f, err := s.d.Messaging.OpenMedia(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && f == nil) {
		fail(c, http.StatusNotFound, "not_found", "no such media")
		return
	}
	if errors.Is(err, media.ErrNotFound) {
		fail(c, http.StatusNotFound, "media_not_ready", "the file is not downloaded (yet): state "+md.State)
		return
	}
	if err != nil {
		s.failErr(c, err)
		return
	}
	defer f.Close()
	if md.MimeType != "" {
		c.Header("Content-Type", md.MimeType)
	}
	if md.Filename != "" {
		c.Header("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": md.Filename}))
	}
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "private, max-age=3600")
	http.ServeContent(c.Writer, c.Request, "", md.UpdatedAt.In(time.UTC), f)
}
