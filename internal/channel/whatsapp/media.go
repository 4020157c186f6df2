package whatsapp

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

// UploadMedia uploads a file for later sends by id (kept by Meta 30 days).
func (c *Client) UploadMedia(ctx context.Context, creds channel.Credentials, mimeType, filename string, data []byte) (string, error) {
	if creds.AccountID == "" {
		return "", graph.Misconfigured("whatsapp: upload media: channel has no phone number id")
	}
	if mimeType == "" {
		return "", graph.Invalid("whatsapp: upload media: no mime type")
	}
	if filename == "" {
		filename = "file"
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("messaging_product", "whatsapp")
	_ = w.WriteField("type", mimeType)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, sanitizeFilename(filename)))
	h.Set("Content-Type", mimeType)
	part, err := w.CreatePart(h)
	if err != nil {
		return "", fmt.Errorf("whatsapp: upload media: %w", err)
	}
	if _, err := part.Write(data); err != nil {
		return "", fmt.Errorf("whatsapp: upload media: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("whatsapp: upload media: %w", err)
	}
	var resp struct {
		ID graph.FlexString `json:"id"`
	}
	path := url.PathEscape(creds.AccountID) + "/media"
	if err := c.g.Do(ctx, http.MethodPost, creds.AccessToken, path, nil, w.FormDataContentType(), &body, &resp); err != nil {
		return "", fmt.Errorf("whatsapp: upload media: %w", err)
	}
	if resp.ID == "" {
		return "", errors.New("whatsapp: upload media: no id in response")
	}
	return string(resp.ID), nil
}

// sanitizeFilename keeps quotes and line breaks out of the part header.
func sanitizeFilename(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

type mediaInfo struct {
	URL      string        `json:"url"`
	MimeType string        `json:"mime_type"`
	FileSize graph.FlexInt `json:"file_size"`
}

// FetchMedia downloads a customer's file in Meta's two steps: resolve the
// media id to a short-lived URL, then GET that URL with the same token
// (without it Meta serves an error page). The size is checked against
// maxBytes before and while downloading; over it is channel.ErrTooLarge.
// A Media with only a URL (an outbound link) is fetched without the token,
// which must never go to a host Graph did not name.
func (c *Client) FetchMedia(ctx context.Context, creds channel.Credentials, m *channel.Media, maxBytes int64) (*channel.Download, error) {
	if m == nil || (m.ProviderID == "" && m.URL == "") {
		return nil, errors.New("whatsapp: fetch media: no media id")
	}
	if m.ProviderID == "" {
		d, err := c.g.Download(ctx, "", m.URL, maxBytes)
		if err != nil {
			return nil, fmt.Errorf("whatsapp: fetch media: %w", err)
		}
		// A type we were told beats a CDN's guess.
		d.MimeType = cmp.Or(m.MimeType, d.MimeType)
		return d, nil
	}
	var q url.Values
	if creds.AccountID != "" {
		// Lets Graph check the media belongs to this number.
		q = url.Values{"phone_number_id": {creds.AccountID}}
	}
	var info mediaInfo
	if err := c.g.GetJSON(ctx, creds.AccessToken, url.PathEscape(m.ProviderID), q, &info); err != nil {
		return nil, fmt.Errorf("whatsapp: fetch media %s: %w", m.ProviderID, err)
	}
	if info.URL == "" {
		return nil, fmt.Errorf("whatsapp: fetch media %s: no url in response", m.ProviderID)
	}
	if maxBytes > 0 && int64(info.FileSize) > maxBytes {
		return nil, fmt.Errorf("whatsapp: fetch media %s: %d bytes: %w", m.ProviderID, info.FileSize, channel.ErrTooLarge)
	}
	d, err := c.g.Download(ctx, creds.AccessToken, info.URL, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: fetch media %s: %w", m.ProviderID, err)
	}
	// Graph's own answer names the type more reliably than the CDN header.
	d.MimeType = cmp.Or(info.MimeType, d.MimeType, m.MimeType)
	return d, nil
}
