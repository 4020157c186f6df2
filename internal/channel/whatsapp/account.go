package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

var _ channel.AccountVerifier = (*Client)(nil)

// maxNumberPages bounds the walk through a WABA's phone numbers; a WABA
// holds at most a few dozen numbers, so more pages mean something is off.
const maxNumberPages = 10

type phoneNumberNode struct {
	ID                 graph.FlexString `json:"id"`
	DisplayPhoneNumber string           `json:"display_phone_number"`
	VerifiedName       string           `json:"verified_name"`
}

// VerifyAccount proves that creds.AccessToken may act for the number
// creds.AccountID and that the number belongs to the WhatsApp Business
// Account wabaID, with the two reads Graph offers for it:
//
//	GET /{phone-number-id}        the number, readable only with a token of its business
//	GET /{waba-id}/phone_numbers  the WABA's numbers, which must list it
//
// The first alone would accept a token of the right business with a WABA
// id made up (and webhooks are routed by the WABA); the second alone does
// not show the token can use the number itself.
func (c *Client) VerifyAccount(ctx context.Context, creds channel.Credentials, wabaID string) (*channel.Account, error) {
	if creds.AccountID == "" || wabaID == "" {
		return nil, fmt.Errorf("whatsapp: verify: phone number id and WABA id are both needed: %w", channel.ErrAccountNotProven)
	}
	var n phoneNumberNode
	q := url.Values{"fields": {"id,display_phone_number,verified_name"}}
	if err := c.g.GetJSON(ctx, creds.AccessToken, url.PathEscape(creds.AccountID), q, &n); err != nil {
		return nil, refusal("read the phone number", err)
	}
	if string(n.ID) != creds.AccountID {
		return nil, fmt.Errorf("whatsapp: verify: Graph answered for id %q: %w", n.ID, channel.ErrAccountNotProven)
	}
	listed, err := c.wabaLists(ctx, creds.AccessToken, wabaID, creds.AccountID)
	if err != nil {
		return nil, err
	}
	if !listed {
		return nil, fmt.Errorf("whatsapp: verify: the WABA does not list the number: %w", channel.ErrAccountNotProven)
	}
	return &channel.Account{ID: creds.AccountID, Owner: wabaID, DisplayPhone: n.DisplayPhoneNumber, Name: n.VerifiedName}, nil
}

// wabaLists walks GET /{waba-id}/phone_numbers looking for numberID.
func (c *Client) wabaLists(ctx context.Context, token, wabaID, numberID string) (bool, error) {
	q := url.Values{"fields": {"id"}, "limit": {"100"}}
	for range maxNumberPages {
		var page struct {
			Data   []phoneNumberNode `json:"data"`
			Paging struct {
				Cursors struct {
					After string `json:"after"`
				} `json:"cursors"`
				Next string `json:"next"`
			} `json:"paging"`
		}
		if err := c.g.GetJSON(ctx, token, url.PathEscape(wabaID)+"/phone_numbers", q, &page); err != nil {
			return false, refusal("list the WABA's numbers", err)
		}
		for _, n := range page.Data {
			if string(n.ID) == numberID {
				return true, nil
			}
		}
		// Graph sets next only when there is another page.
		if page.Paging.Next == "" || page.Paging.Cursors.After == "" {
			return false, nil
		}
		q.Set("after", page.Paging.Cursors.After)
	}
	return false, errors.New("whatsapp: verify: the WABA's number list does not end")
}

// refusal marks Graph's final answers as a refusal of the token; the rest
// (network, throttling) stay plain errors.
func refusal(what string, err error) error {
	if graph.Refused(err) {
		return fmt.Errorf("whatsapp: verify: %s: %w (%w)", what, channel.ErrAccountNotProven, err)
	}
	return fmt.Errorf("whatsapp: verify: %s: %w", what, err)
}
