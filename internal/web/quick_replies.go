package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/store"
)

// Quick replies (issue 9): a workspace's canned answers, each a short
// title, a text and optionally one file. Owners and admins (and API
// tokens) manage them; everyone picks them in the chat view (the shared
// chat and the CRM card pages; internal/crm/chatview). The file is kept
// in the media store and attached by the server when a send names the
// quick reply, so a browser never has to hold it.

// Quick reply limits: the title fits a picker, the text one WhatsApp
// message (4096 characters), the file what WhatsApp takes as a document.
const (
	quickTitleMax = 60
	quickTextMax  = 4096
	quickFileMax  = chatview.QuickFileMax
)

// quickReplyInput is a quick reply as a form or an API request sends it.
type quickReplyInput struct {
	Title string `json:"title"`
	Text  string `json:"text"`
	// WorkspaceID is where the operator's token creates it.
	WorkspaceID string `json:"workspace_id"`
	// DropFile removes the stored file (on update).
	DropFile bool `json:"drop_file"`
	file     *messaging.Upload
}

// quickReplyView is a quick reply as the API shows it.
type quickReplyView struct {
	ID          string `json:"id"`
	WorkspaceID string `json:"workspace_id"`
	Title       string `json:"title"`
	Text        string `json:"text"`
	File        *struct {
		Filename string `json:"filename"`
		MimeType string `json:"mime_type"`
		Size     int64  `json:"size"`
	} `json:"file"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func viewQuickReply(q *store.QuickReply) quickReplyView {
	v := quickReplyView{ID: q.ID, WorkspaceID: q.WorkspaceID, Title: q.Title, Text: q.Text,
		CreatedAt: q.CreatedAt.UTC(), UpdatedAt: q.UpdatedAt.UTC()}
	if q.FileKey != "" {
		v.File = &struct {
			Filename string `json:"filename"`
			MimeType string `json:"mime_type"`
			Size     int64  `json:"size"`
		}{q.Filename, q.MimeType, q.FileSize}
	}
	return v
}

// quickFileLimit is the file cap: the quick reply limit, or the gateway's
// upload limit when that is lower.
func (s *Server) quickFileLimit() int64 {
	if s.d.UploadMaxBytes > 0 && s.d.UploadMaxBytes < quickFileMax {
		return s.d.UploadMaxBytes
	}
	return quickFileMax
}

// readQuickReply reads a quick reply from JSON, a form, or a multipart
// form with a file, the body capped at the file limit plus the fields.
func (s *Server) readQuickReply(c *gin.Context) (*quickReplyInput, error) {
	in := &quickReplyInput{}
	limit := s.quickFileLimit()
	ct, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
		if err != nil {
			return nil, fault.New(fault.TooLarge, "body_too_large", "JSON bodies are limited to 1 MiB; send a file as multipart/form-data")
		}
		if err := json.Unmarshal(body, in); err != nil {
			return nil, fault.New(fault.Malformed, "invalid_json", "the body is not valid JSON")
		}
		return in, nil
	case "multipart/form-data":
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit+maxJSONBody)
		if err := c.Request.ParseMultipartForm(8 << 20); err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				return nil, onField(fault.Newf(fault.TooLarge, "quick_file_too_large", "a quick reply's file is limited to %d bytes", limit), "file")
			}
			return nil, fault.New(fault.Malformed, "form_invalid", "the body is not a valid multipart form")
		}
	default:
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody)
		if err := c.Request.ParseForm(); err != nil {
			return nil, fault.New(fault.Malformed, "form_invalid", "the body is not a valid form")
		}
	}
	f := c.Request.PostForm
	in.Title, in.Text, in.WorkspaceID, in.DropFile = f.Get("title"), f.Get("text"), f.Get("workspace_id"), f.Get("drop_file") != ""
	if mf := c.Request.MultipartForm; mf != nil {
		if fhs := mf.File["file"]; len(fhs) > 0 && fhs[0].Filename != "" {
			fh := fhs[0]
			file, err := fh.Open()
			if err != nil {
				return nil, err
			}
			data, err := io.ReadAll(io.LimitReader(file, limit+1))
			if cerr := file.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			if int64(len(data)) > limit {
				return nil, onField(fault.Newf(fault.TooLarge, "quick_file_too_large", "a quick reply's file is limited to %d bytes", limit), "file")
			}
			if len(data) == 0 {
				return nil, onField(fault.New(fault.Invalid, "quick_file_empty", "the file is empty"), "file")
			}
			mt := fh.Header.Get("Content-Type")
			if mt == "" || mt == "application/octet-stream" {
				mt = http.DetectContentType(data)
			}
			in.file = &messaging.Upload{Filename: fh.Filename, MimeType: mt, Data: data}
		}
	}
	return in, nil
}

// check normalises and validates the input; had says whether the reply
// being edited keeps a file.
func (in *quickReplyInput) check(hadFile bool) error {
	in.Title, in.Text = strings.TrimSpace(in.Title), strings.TrimSpace(in.Text)
	switch {
	case in.Title == "":
		return onField(fault.New(fault.Invalid, "quick_title_required", "a quick reply needs a title"), "title")
	case utf8.RuneCountInString(in.Title) > quickTitleMax:
		return onField(fault.Newf(fault.Invalid, "quick_title_too_long", "the title is limited to %d characters", quickTitleMax), "title")
	case utf8.RuneCountInString(in.Text) > quickTextMax:
		return onField(fault.Newf(fault.Invalid, "quick_text_too_long", "the text is limited to %d characters", quickTextMax), "text")
	case in.Text == "" && in.file == nil && (!hadFile || in.DropFile):
		return onField(fault.New(fault.Invalid, "quick_empty", "a quick reply needs a text or a file"), "text")
	}
	return nil
}

// saveQuickReply creates (old nil) or updates a workspace's quick reply:
// the new file is kept first, the row saved, then the replaced file goes.
func (s *Server) saveQuickReply(ctx context.Context, workspaceID string, old *store.QuickReply, in *quickReplyInput) (*store.QuickReply, error) {
	if err := in.check(old != nil && old.FileKey != ""); err != nil {
		return nil, err
	}
	q := &store.QuickReply{WorkspaceID: workspaceID, Title: in.Title, Text: in.Text}
	if old == nil {
		n, err := s.d.Store.CountQuickReplies(ctx, workspaceID)
		if err != nil {
			return nil, err
		}
		if n >= store.QuickReplyMax {
			return nil, fault.Newf(fault.Conflict, "quick_replies_full", "a workspace keeps at most %d quick replies", store.QuickReplyMax)
		}
		q.ID = store.NewID()
	} else {
		q.ID, q.CreatedAt = old.ID, old.CreatedAt
		if !in.DropFile {
			q.FileKey, q.Filename, q.MimeType, q.FileSize = old.FileKey, old.Filename, old.MimeType, old.FileSize
		}
	}
	if in.file != nil {
		// The messenger's own rules, as a send applies them: a file it
		// would refuse is refused now, not when an operator uses it.
		if err := s.d.Messaging.CheckKept(in.file); err != nil {
			if fe := fault.As(err); fe != nil {
				fe.Field = "file"
			}
			return nil, err
		}
		// A key of its own per file: a send reading the old one meanwhile
		// still finds it.
		q.FileKey = messaging.KeptKey(workspaceID, store.NewID())
		q.Filename, q.MimeType, q.FileSize = in.file.Filename, in.file.MimeType, int64(len(in.file.Data))
		if err := s.d.Messaging.KeepFile(ctx, q.FileKey, in.file.Data); err != nil {
			return nil, err
		}
	}
	var err error
	if old == nil {
		err = s.d.Store.CreateQuickReply(ctx, q)
	} else {
		err = s.d.Store.UpdateQuickReply(ctx, store.Scope{WorkspaceID: workspaceID}, q)
	}
	if err != nil {
		if in.file != nil {
			s.dropKept(ctx, q.FileKey)
		}
		return nil, err
	}
	if old != nil && old.FileKey != "" && old.FileKey != q.FileKey {
		s.dropKept(ctx, old.FileKey)
	}
	return q, nil
}

// dropKept removes a file nothing refers to any more; failing, it is
// logged (an orphan file, not a lost answer).
func (s *Server) dropKept(ctx context.Context, key string) {
	if err := s.d.Messaging.DropFile(ctx, key); err != nil {
		s.d.Log.Error("quick replies: remove a file", "key", key, "err", err)
	}
}

// deleteQuickReply removes a workspace's quick reply and its file.
func (s *Server) deleteQuickReply(ctx context.Context, sc store.Scope, id string) error {
	if !store.ValidID(id) {
		return store.ErrNotFound
	}
	q, err := s.d.Store.DeleteQuickReply(ctx, sc, id)
	if err != nil {
		return err
	}
	if q.FileKey != "" {
		s.dropKept(ctx, q.FileKey)
	}
	return nil
}

// ---- API ----

// listQuickReplies answers GET /api/v1/quick-replies.
func (s *Server) listQuickReplies(c *gin.Context) {
	qs, err := s.d.Store.ListQuickReplies(c.Request.Context(), scopeOf(c))
	if err != nil {
		s.failErr(c, err)
		return
	}
	out := make([]quickReplyView, 0, len(qs))
	for i := range qs {
		out = append(out, viewQuickReply(&qs[i]))
	}
	reply(c, http.StatusOK, gin.H{"quick_replies": out})
}

// createQuickReply answers POST /api/v1/quick-replies (JSON, or multipart
// with a file).
func (s *Server) createQuickReply(c *gin.Context) {
	in, err := s.readQuickReply(c)
	if err != nil {
		s.failErr(c, err)
		return
	}
	ws, ok := s.targetWorkspace(c, in.WorkspaceID)
	if !ok {
		return
	}
	q, err := s.saveQuickReply(c.Request.Context(), ws, nil, in)
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusCreated, viewQuickReply(q))
}

// updateQuickReply answers PUT /api/v1/quick-replies/{id}: the whole
// reply; the file stays unless a new one comes or drop_file is set.
func (s *Server) updateQuickReply(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("id")
	if !store.ValidID(id) {
		fail(c, http.StatusNotFound, "not_found", "no such quick reply")
		return
	}
	old, err := s.d.Store.GetQuickReply(ctx, scopeOf(c), id)
	if err != nil {
		s.failErr(c, err)
		return
	}
	in, err := s.readQuickReply(c)
	if err != nil {
		s.failErr(c, err)
		return
	}
	q, err := s.saveQuickReply(ctx, old.WorkspaceID, old, in)
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, viewQuickReply(q))
}

// deleteQuickReplyAPI answers DELETE /api/v1/quick-replies/{id}.
func (s *Server) deleteQuickReplyAPI(c *gin.Context) {
	if err := s.deleteQuickReply(c.Request.Context(), scopeOf(c), c.Param("id")); err != nil {
		s.failErr(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// onField names the refused value of e.
func onField(e *fault.Error, field string) *fault.Error {
	e.Field = field
	return e
}
