package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/switchboard/switchboard/internal/channel"
)

var _ channel.TemplateLister = (*Client)(nil)

// maxTemplatePages bounds the walk through a WABA's templates: Meta caps a
// WABA at a few thousand templates, 100 a page.
const maxTemplatePages = 100

type templateNode struct {
	Name       string          `json:"name"`
	Language   string          `json:"language"`
	Category   string          `json:"category"`
	Status     string          `json:"status"`
	Components json.RawMessage `json:"components"`
}

// ListTemplates reads GET /{waba-id}/message_templates page by page (the
// after cursor while Graph gives a next link), so the caller replaces its
// copy only with a whole set.
func (c *Client) ListTemplates(ctx context.Context, creds channel.Credentials, wabaID string) ([]channel.TemplateInfo, error) {
	if wabaID == "" {
		return nil, errors.New("whatsapp: templates: the channel has no WABA id")
	}
	q := url.Values{"fields": {"name,language,category,status,components"}, "limit": {"100"}}
	var out []channel.TemplateInfo
	for range maxTemplatePages {
		var page struct {
			Data   []templateNode `json:"data"`
			Paging struct {
				Cursors struct {
					After string `json:"after"`
				} `json:"cursors"`
				Next string `json:"next"`
			} `json:"paging"`
		}
		if err := c.g.GetJSON(ctx, creds.AccessToken, url.PathEscape(wabaID)+"/message_templates", q, &page); err != nil {
			return nil, fmt.Errorf("whatsapp: templates: %w", err)
		}
		for _, t := range page.Data {
			comps := t.Components
			if len(comps) == 0 || string(comps) == "null" {
				comps = json.RawMessage("[]")
			}
			out = append(out, channel.TemplateInfo{Name: t.Name, Language: t.Language, Category: t.Category, Status: t.Status, Components: comps})
		}
		if page.Paging.Next == "" || page.Paging.Cursors.After == "" {
			return out, nil
		}
		q.Set("after", page.Paging.Cursors.After)
	}
	return nil, errors.New("whatsapp: templates: the WABA's template list does not end")
}
