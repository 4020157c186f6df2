package instagram

import (
	"context"
	"fmt"
	"net/url"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

var _ channel.AccountVerifier = (*Client)(nil)

// VerifyAccount proves that creds.AccessToken may act for the Instagram
// professional account creds.AccountID: GET /{ig-user-id} answers only for
// a token of that account (a Page token of its linked Page on
// graph.facebook.com, or its own Instagram Login token on
// graph.instagram.com), and must answer with that very id. Instagram has no
// business account above the account, so owner is not used.
func (c *Client) VerifyAccount(ctx context.Context, creds channel.Credentials, _ string) (*channel.Account, error) {
	if creds.AccountID == "" {
		return nil, fmt.Errorf("instagram: verify: no account id: %w", channel.ErrAccountNotProven)
	}
	var u struct {
		ID       graph.FlexString `json:"id"`
		Username string           `json:"username"`
	}
	q := url.Values{"fields": {"id,username"}}
	if err := c.g.GetJSON(ctx, creds.AccessToken, url.PathEscape(creds.AccountID), q, &u); err != nil {
		if graph.Refused(err) {
			return nil, fmt.Errorf("instagram: verify: %w (%w)", channel.ErrAccountNotProven, err)
		}
		return nil, fmt.Errorf("instagram: verify: %w", err)
	}
	if string(u.ID) != creds.AccountID {
		return nil, fmt.Errorf("instagram: verify: Graph answered for id %q: %w", u.ID, channel.ErrAccountNotProven)
	}
	return &channel.Account{ID: creds.AccountID, Name: u.Username}, nil
}
