package web

import (
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/store"
)

// serveMedia serves a stored file to whoever holds a valid signed link
// (CRMs fetch files by URL and cannot send our tokens). HEAD answers the
// same headers without the body: CRMs probe links with it.
//
// Files come from customers and operators, so they may be HTML or SVG made
// to run script on this origin, where the cabinet keeps its sessions. Every
// file is sandboxed by CSP and nosniff; only types a browser cannot run
// script in are shown inline, everything else is a download.
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
	contentType := "application/octet-stream"
	if mt, _, err := mime.ParseMediaType(md.MimeType); err == nil && mt != "" {
		contentType = md.MimeType
	}
	// Set before ServeContent, which sniffs the body when no type is set.
	c.Header("Content-Type", contentType)
	disposition := "attachment"
	if inlineSafe(contentType) {
		disposition = "inline"
	}
	params := map[string]string{}
	if md.Filename != "" {
		params["filename"] = md.Filename
	}
	cd := mime.FormatMediaType(disposition, params)
	if cd == "" { // a file name mime cannot encode
		cd = disposition
	}
	c.Header("Content-Disposition", cd)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Content-Security-Policy", "sandbox; default-src 'none'")
	c.Header("Cache-Control", "private, max-age=3600")
	http.ServeContent(c.Writer, c.Request, "", md.UpdatedAt.In(time.UTC), f)
}

// inlineSafe reports whether a browser shows this type without running
// script: raster images, audio and video. SVG is an image that runs script,
// so it is not among them.
func inlineSafe(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	mt = strings.ToLower(mt)
	switch mt {
	case "image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp", "image/heic", "image/heif":
		return true
	}
	return strings.HasPrefix(mt, "audio/") || strings.HasPrefix(mt, "video/")
}
