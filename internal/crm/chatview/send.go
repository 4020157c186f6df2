package chatview

import (
	"cmp"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/store"
)

// maxPlainForm caps a send without a file: a text of a few KB.
const maxPlainForm = 1 << 20

// ReadForm reads a send's body before anything else reads it: multipart
// (the send box with a file) capped at the upload limit plus a margin for
// the fields, or a plain form capped at 1 MiB. The page session is in the
// body, so this runs before the session is opened; a too-large body is a
// TooLarge refusal.
func (s *Service) ReadForm(w http.ResponseWriter, r *http.Request) error {
	tooBig := func(err error) bool {
		var mb *http.MaxBytesError
		return errors.As(err, &mb)
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.UploadMaxBytes+maxPlainForm)
		// Files past 8 MiB wait on disk, not in memory; the server removes
		// them after the request.
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			if tooBig(err) {
				return fault.Newf(fault.TooLarge, "body_too_large", "files are limited to %d bytes", s.cfg.UploadMaxBytes)
			}
			return fault.New(fault.Malformed, "form_invalid", "the body is not a valid multipart form")
		}
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxPlainForm)
	if err := r.ParseForm(); err != nil {
		if tooBig(err) {
			return fault.New(fault.TooLarge, "body_too_large", "the form body is too large")
		}
		return fault.New(fault.Malformed, "form_invalid", "the body is not a valid form")
	}
	return nil
}

// Send handles the send box of a record's page (its form already read by
// ReadForm; only the body counts, so a link cannot send). The target must
// be one the page offers for this record; the access rights and visibility
// refuse with a Forbidden error before anything is stored. What the
// outcome is goes back as the page's redirect query: sent=1, or error=code
// (and messenger= for a closed window), worded by Notice.
func (s *Service) Send(ctx context.Context, rec Record, r *http.Request, send SendFunc) (url.Values, error) {
	ws := rec.workspace()
	f := r.PostForm
	v, err := s.look(ctx, rec)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	refuse := func(code string) (url.Values, error) {
		q.Set("error", code)
		return q, nil
	}
	c, ok := v.cands[f.Get("target")]
	if !ok {
		// A channel of this workspace to a number of this record, or a
		// customer behind it: anything else is not this record's.
		return refuse("recipient_foreign")
	}
	switch {
	case !v.gate.Sees(c.channelID, c.owner):
		return nil, fault.New(fault.Forbidden, "access_denied", "no access to this conversation")
	case !v.gate.Sends(c.channelID, c.owner):
		return nil, fault.New(fault.Forbidden, "channel_read_only", "read-only access to this channel")
	}
	// A quick reply is the workspace's own: another's id is not found.
	var quick *store.QuickReply
	var quickFile *messaging.Upload
	if id := f.Get("quick"); id != "" {
		if quick, quickFile, err = s.quickReply(ctx, ws, id); err != nil {
			return nil, err
		}
	}
	req := messaging.SendRequest{To: c.address, Text: strings.TrimSpace(f.Get("text"))}
	if pick := f.Get("tpl"); pick != "" {
		// A template from the picker: one of the channel's approved
		// templates, every variable filled in. The text and file the box
		// may still hold are not sent with it.
		var choice *TemplateChoice
		if chID, _, _ := strings.Cut(pick, "|"); chID == c.channelID {
			cs, _ := s.choices(ctx, ws, chID, rec.Lang)
			for _, tc := range cs {
				if tc.Value == pick {
					choice = &tc
					break
				}
			}
		}
		if choice == nil {
			return refuse("template_unknown")
		}
		req.Template = &channel.Template{Name: choice.Name, Language: choice.Language}
		for _, vr := range choice.Vars {
			p := strings.TrimSpace(f.Get(choice.Field + strconv.Itoa(vr.N)))
			if p == "" {
				return refuse("template_variable_required")
			}
			req.Template.Params = append(req.Template.Params, p)
		}
		req.Text = ""
	} else if tpl := strings.TrimSpace(f.Get("template")); tpl != "" {
		// A template named by hand: the messenger checks it.
		req.Template = &channel.Template{Name: tpl, Language: cmp.Or(strings.TrimSpace(f.Get("template_language")), rec.Lang)}
		for _, p := range strings.Split(f.Get("template_params"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				req.Template.Params = append(req.Template.Params, p)
			}
		}
		req.Text = ""
	}
	if r.MultipartForm != nil && req.Template == nil {
		if fhs := r.MultipartForm.File["file"]; len(fhs) > 0 && fhs[0].Filename != "" {
			fh := fhs[0]
			file, err := fh.Open()
			if err != nil {
				return nil, err
			}
			data, err := io.ReadAll(io.LimitReader(file, s.cfg.UploadMaxBytes+1))
			if cerr := file.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			if int64(len(data)) > s.cfg.UploadMaxBytes {
				return refuse("file_too_large")
			}
			req.Upload = &messaging.Upload{Filename: fh.Filename, MimeType: fh.Header.Get("Content-Type"), Data: data}
			req.Media = &messaging.SendMedia{Filename: fh.Filename}
		}
	}
	withQuickReply(&req, quick, quickFile)
	if rec.Integration != nil && rec.Session != nil && rec.Session.UserID != "" {
		// The CRM's user wrote it (a cabinet's send names its own user
		// instead).
		name, err := s.cfg.Store.CRMUserName(ctx, rec.Integration.ID, rec.Session.UserID)
		if err != nil {
			s.cfg.Log.Warn("chat view: author name", "integration_id", rec.Integration.ID, "err", err)
		}
		req.Author = &store.MessageAuthor{Kind: store.AuthorCRM, UserID: rec.Session.UserID, Name: name}
	}
	_, err = send(ctx, c.channelID, req)
	var fe *fault.Error
	switch {
	case err == nil:
		q.Set("sent", "1")
	case errors.As(err, &fe):
		// The code travels; the page words it in its language.
		q.Set("error", fe.Code)
		if fe.Code == "window_closed" {
			// The explanation differs by messenger.
			for _, ch := range v.chs {
				if ch.ID == c.channelID {
					q.Set("messenger", ch.Type)
				}
			}
		}
	case errors.Is(err, store.ErrNotFound):
		q.Set("error", "channel_not_found")
	default:
		s.cfg.Log.Error("chat view: send", "integration_id", rec.integrationID(), "err", err)
		q.Set("error", "internal")
	}
	return q, nil
}

// quickReply loads a quick reply of the workspace with its file (nil when
// it has none), for a send that names it. Another workspace's id is a
// NotFound refusal.
func (s *Service) quickReply(ctx context.Context, workspaceID, id string) (*store.QuickReply, *messaging.Upload, error) {
	gone := fault.New(fault.NotFound, "quick_reply_not_found", "no such quick reply")
	if !store.ValidID(id) {
		return nil, nil, gone
	}
	q, err := s.cfg.Store.GetQuickReply(ctx, store.Scope{WorkspaceID: workspaceID}, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, gone
	}
	if err != nil || q.FileKey == "" || s.cfg.KeptFile == nil {
		return q, nil, err
	}
	data, err := s.cfg.KeptFile(ctx, q.FileKey, QuickFileMax)
	if err != nil {
		return nil, nil, err
	}
	return q, &messaging.Upload{Filename: q.Filename, MimeType: q.MimeType, Data: data}, nil
}

// withQuickReply completes a send with the quick reply it names: its text
// when the box was left empty, its file when none was picked. A template
// goes alone.
func withQuickReply(req *messaging.SendRequest, q *store.QuickReply, up *messaging.Upload) {
	if q == nil || req.Template != nil {
		return
	}
	if req.Text == "" {
		req.Text = q.Text
	}
	if up != nil && req.Upload == nil {
		req.Upload = up
		req.Media = &messaging.SendMedia{Filename: up.Filename}
	}
}

// Notice words the outcome a send's redirect names, in lang: the words are
// the page's own, so a crafted link cannot put text on the page (an
// unknown code reads as an internal error).
func Notice(lang string, q url.Values) (text string, isErr bool) {
	if q.Get("sent") == "1" {
		return Texts(lang)["sent"], false
	}
	e := q.Get("error")
	if e == "" {
		return "", false
	}
	if e == "window_closed" {
		// A crafted value only picks another of the fixed explanations.
		return crm.WindowClosed(lang, q.Get("messenger")), true
	}
	if t, ok := ErrText(lang, e); ok {
		return t, true
	}
	return Texts(lang)["err_internal"], true
}
