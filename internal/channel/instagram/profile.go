package instagram

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

// Profile is what Instagram shares about a customer who has messaged the
// business. Name and picture may be empty; the picture URL expires within
// days, so re-fetch rather than store it.
type Profile struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Username   string `json:"username"`
	ProfilePic string `json:"profile_pic"`
}

// Profile fetches a customer's name and username by their IGSID. Instagram
// refuses it ("User consent is required") until the customer has written.
func (c *Client) Profile(ctx context.Context, creds channel.Credentials, igsid string) (*Profile, error) {
	if igsid == "" {
		return nil, errors.New("instagram: profile: no user id")
	}
	var p struct {
		ID         graph.FlexString `json:"id"`
		Name       string           `json:"name"`
		Username   string           `json:"username"`
		ProfilePic string           `json:"profile_pic"`
	}
	q := url.Values{"fields": {"name,username,profile_pic"}}
	if err := c.g.GetJSON(ctx, creds.AccessToken, url.PathEscape(igsid), q, &p); err != nil {
		return nil, fmt.Errorf("instagram: profile: %w", err)
	}
	return &Profile{ID: cmp.Or(string(p.ID), igsid), Name: p.Name, Username: p.Username, ProfilePic: p.ProfilePic}, nil
}

// FetchProfile implements channel.ProfileFetcher.
func (c *Client) FetchProfile(ctx context.Context, creds channel.Credentials, igsid string) (*channel.Customer, error) {
	p, err := c.Profile(ctx, creds, igsid)
	if err != nil {
		return nil, err
	}
	return &channel.Customer{ExternalID: p.ID, Name: p.Name, Username: p.Username, AvatarURL: p.ProfilePic}, nil
}
