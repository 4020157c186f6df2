package amocrm

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// ChatLink ties an amojo chat to a contact (POST and GET
// /api/v4/contacts/chats). ID is the link's own id, which changes when the
// chat is linked to another contact.
type ChatLink struct {
	ChatID    string `json:"chat_id"`
	ContactID int    `json:"contact_id"`
	ID        int    `json:"id,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// LinkChats links chats (amojo chat ids) to contacts; a chat linked
// elsewhere is moved. amoCRM refuses the whole call when a chat or a
// contact is not the account's (validation-errors by request_id).
func (p *API) LinkChats(ctx context.Context, links []ChatLink) ([]ChatLink, error) {
	in := make([]ChatLink, len(links))
	for i, l := range links {
		in[i] = ChatLink{ChatID: l.ChatID, ContactID: l.ContactID, RequestID: l.RequestID}
	}
	var resp struct {
		Embedded struct {
			Chats []ChatLink `json:"chats"`
		} `json:"_embedded"`
	}
	if err := p.c.sendJSON(ctx, p.a, http.MethodPost, "/api/v4/contacts/chats", in, &resp); err != nil {
		return nil, err
	}
	if len(resp.Embedded.Chats) != len(in) {
		return resp.Embedded.Chats, fmt.Errorf("amocrm: POST /api/v4/contacts/chats: %d links made for %d sent", len(resp.Embedded.Chats), len(in))
	}
	return resp.Embedded.Chats, nil
}

// ContactChats lists the chats linked to a contact; none is an empty
// answer (amoCRM's 204).
func (p *API) ContactChats(ctx context.Context, contactID int) ([]ChatLink, error) {
	var out struct {
		Embedded struct {
			Chats []ChatLink `json:"chats"`
		} `json:"_embedded"`
	}
	found, err := p.c.getJSON(ctx, p.a, "/api/v4/contacts/chats", url.Values{"contact_id": {strconv.Itoa(contactID)}}, &out)
	if err != nil || !found {
		return nil, err
	}
	return out.Embedded.Chats, nil
}
