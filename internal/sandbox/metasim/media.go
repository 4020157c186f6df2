package metasim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// lookasidePath imitates lookaside.fbsbx.com, the host Meta serves media
// downloads from, on the simulator's own address.
const lookasidePath = "/lookaside/whatsapp_business/attachments/"

type mediaObject struct {
	id        string
	owner     string // phone_number_id that uploaded or received it
	mime      string
	filename  string
	data      []byte
	sha256hex string
	deleted   bool
}

func (s *Server) storeMedia(owner, mimeType, filename string, data []byte) *mediaObject {
	sum := sha256.Sum256(data)
	m := &mediaObject{
		id:        newMediaID(),
		owner:     owner,
		mime:      mimeType,
		filename:  filename,
		data:      data,
		sha256hex: hex.EncodeToString(sum[:]),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.media[m.id] = m
	return m
}

// mediaUsableBy reports whether num may send media id: media belongs to a
// WABA, so any number of the same account may use it.
func (s *Server) mediaUsableBy(id string, num *waNumber) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.media[id]
	if !ok || m.deleted {
		return false
	}
	owner, ok := s.numbers[m.owner]
	return ok && owner.wabaID == num.wabaID
}

// mediaForToken returns live media that token may read, or nil.
func (s *Server) mediaForToken(id, token string) (m *mediaObject, exists bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.media[id]
	if !ok || m.deleted {
		return nil, false
	}
	owner, ok := s.numbers[m.owner]
	if !ok {
		return nil, true
	}
	for _, n := range s.numbers {
		if n.wabaID == owner.wabaID && n.token == token {
			return m, true
		}
	}
	return nil, true
}

// mediaLimit returns the post-processing size limit for a MIME type
// (contract §2.7), or false if WhatsApp does not accept the type.
func mediaLimit(mimeType string) (int64, bool) {
	const mb = 1 << 20
	switch mimeType {
	case "audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg":
		return 16 * mb, true
	case "image/jpeg", "image/png":
		return 5 * mb, true
	case "image/webp":
		return 500 << 10, true
	case "video/mp4", "video/3gpp":
		return 16 * mb, true
	case "text/plain":
		return 100 * mb, true
	}
	if strings.HasPrefix(mimeType, "application/") {
		return 100 * mb, true
	}
	return 0, false
}

func (s *Server) handleMediaUpload(w http.ResponseWriter, r *http.Request, num *waNumber) {
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		writeGraphError(w, errWAInvalidParam("Media upload must be multipart/form-data: "+err.Error()))
		return
	}
	if r.MultipartForm != nil {
		defer r.MultipartForm.RemoveAll()
	}
	if r.FormValue("messaging_product") != "whatsapp" {
		writeGraphError(w, errWAInvalidParam("The parameter messaging_product is required and must be 'whatsapp'."))
		return
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		writeGraphError(w, errWAInvalidParam("The parameter file is required."))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		writeGraphError(w, errWAInvalidParam("Could not read the uploaded file: "+err.Error()))
		return
	}
	typ := r.FormValue("type")
	if typ == "" {
		typ = hdr.Header.Get("Content-Type")
	}
	base, _, err := mime.ParseMediaType(typ)
	if err != nil {
		writeGraphError(w, errWAInvalidParam(fmt.Sprintf("Param type must be a MIME type, got %q", typ)))
		return
	}
	limit, ok := mediaLimit(base)
	if !ok {
		writeGraphError(w, errWAInvalidParam(fmt.Sprintf("Param file must be a file with a supported MIME type, got %q", base)))
		return
	}
	if int64(len(data)) > limit {
		writeGraphError(w, errWAInvalidParam(fmt.Sprintf("Param file is %d bytes, larger than the %d byte limit for %s", len(data), limit, base)))
		return
	}
	m := s.storeMedia(num.id, typ, hdr.Filename, data)
	writeJSON(w, http.StatusOK, map[string]string{"id": m.id})
}

type mediaURLResponse struct {
	MessagingProduct string `json:"messaging_product"`
	URL              string `json:"url"`
	MimeType         string `json:"mime_type"`
	SHA256           string `json:"sha256"`
	FileSize         int    `json:"file_size"`
	ID               string `json:"id"`
}

// handleMediaGet answers GET /{media-id}; it reports false when id is not a
// media object so the caller can try other object kinds.
func (s *Server) handleMediaGet(w http.ResponseWriter, r *http.Request, token, id string) bool {
	m, exists := s.mediaForToken(id, token)
	if !exists {
		return false
	}
	if m == nil {
		writeGraphError(w, errUnsupported(r.Method, id))
		return true
	}
	if pn := r.URL.Query().Get("phone_number_id"); pn != "" && s.whatsAppNumber(pn, token) == nil {
		writeGraphError(w, errUnsupported(r.Method, id))
		return true
	}
	ext := strconv.FormatInt(s.clock().Add(mediaURLTTL).Unix(), 10)
	q := url.Values{"mid": {m.id}, "ext": {ext}, "hash": {s.mediaHash(m.id, ext)}}
	writeJSON(w, http.StatusOK, mediaURLResponse{
		MessagingProduct: "whatsapp",
		URL:              s.baseURL(r) + lookasidePath + "?" + q.Encode(),
		MimeType:         m.mime,
		SHA256:           m.sha256hex,
		FileSize:         len(m.data),
		ID:               m.id,
	})
	return true
}

func (s *Server) handleMediaDelete(w http.ResponseWriter, token, id string) bool {
	m, exists := s.mediaForToken(id, token)
	if !exists {
		return false
	}
	if m == nil {
		writeGraphError(w, errUnsupported(http.MethodDelete, id))
		return true
	}
	s.mu.Lock()
	m.deleted = true
	m.data = nil
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	return true
}

// mediaHash signs (mid, ext) so a client cannot extend a URL's lifetime by
// editing ext, just as Meta's signed lookaside URLs.
func (s *Server) mediaHash(mid, ext string) string {
	mac := hmac.New(sha256.New, s.urlKey)
	mac.Write([]byte(mid + "|" + ext))
	return "AT" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
}

// handleMediaDownload serves the bytes behind a media URL. Like Meta it
// answers an HTML error page, not JSON, when something is wrong: clients
// that forget the bearer token otherwise end up storing an error page as
// the customer's file.
func (s *Server) handleMediaDownload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		errorPage(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	token := bearerToken(r)
	if token == "" {
		errorPage(w, http.StatusUnauthorized, "Sorry, this content isn't available right now. An access token is required.")
		return
	}
	q := r.URL.Query()
	mid, ext, hash := q.Get("mid"), q.Get("ext"), q.Get("hash")
	if !hmac.Equal([]byte(hash), []byte(s.mediaHash(mid, ext))) {
		errorPage(w, http.StatusNotFound, "Sorry, this content isn't available right now. Bad URL hash.")
		return
	}
	expiry, err := strconv.ParseInt(ext, 10, 64)
	if err != nil || s.clock().Unix() >= expiry {
		errorPage(w, http.StatusNotFound, "URL signature expired. Request a new URL with GET /{media-id}.")
		return
	}
	s.mu.Lock()
	ts, known := s.tokens[token]
	expired := known && ts.expired
	s.mu.Unlock()
	if !known || expired {
		errorPage(w, http.StatusUnauthorized, "Sorry, this content isn't available right now. Invalid or expired access token.")
		return
	}
	m, exists := s.mediaForToken(mid, token)
	if !exists {
		errorPage(w, http.StatusNotFound, "Sorry, this content isn't available right now. Media not found.")
		return
	}
	if m == nil {
		errorPage(w, http.StatusForbidden, "Sorry, this content isn't available right now. The token may not read this media.")
		return
	}
	s.mu.Lock()
	data, mimeType := m.data, m.mime
	s.mu.Unlock()
	w.Header().Set("Content-Type", mimeType)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(data)
	}
}

func errorPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>%d</h1><p>%s</p></body></html>\n",
		status, msg)
}
