package instagram

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/internal/channel"
)

// UploadMedia is not offered: Instagram sends attachments by public URL.
func (c *Client) UploadMedia(ctx context.Context, creds channel.Credentials, mimeType, filename string, data []byte) (string, error) {
	return "", channel.ErrUnsupported
}

// FetchMedia downloads an attachment from its CDN link. The link is signed
// and public, so no token is sent; it expires, so fetch promptly.
func (c *Client) FetchMedia(ctx context.Context, creds channel.Credentials, m *channel.Media, maxBytes int64) (*channel.Download, error) {
	if m == nil || m.URL == "" {
		return nil, errors.New("instagram: fetch media: no url")
	}
	d, err := c.g.Download(ctx, "", m.URL, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("instagram: fetch media: %w", err)
	}
	if d.MimeType == "" {
		d.MimeType = m.MimeType
	}
	return d, nil
}
