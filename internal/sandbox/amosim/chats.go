package amosim

import (
	"net/http"
	"strconv"
)

// Chats made in advance and linked to contacts (contract §6.5a; Kommo's
// "Create chat" and "Link chat to contact"):
//   - POST /v2/origin/custom/{scope_id}/chats creates the chat of a
//     conversation_id before its first message, or returns the one it has;
//   - POST /api/v4/contacts/chats links chats to contacts (both must exist
//     in the account), GET lists the links of a contact or of a chat;
//   - the first customer message of a chat linked to nobody makes amoCRM's
//     own incoming lead and contact (the main pipeline's unsorted status),
//     while a linked chat's messages go to its contact and make no lead.

// handleCreateChat is POST /v2/origin/custom/{scope_id}/chats.
func (s *Server) handleCreateChat(w http.ResponseWriter, r *http.Request, body []byte) {
	a := s.accountByScope(r.PathValue("id"))
	if a == nil {
		amojoError(w, http.StatusNotFound, "scope not found")
		return
	}
	noteAccount(r, a.spec.ID)
	var req struct {
		ConversationID string `json:"conversation_id"`
		Source         *struct {
			ExternalID string `json:"external_id"`
		} `json:"source"`
		User *amojoSender `json:"user"`
	}
	if err := strictDecode(body, &req); err != nil {
		amojoError(w, http.StatusBadRequest, "invalid body: "+err.Error())
		return
	}
	switch {
	case req.ConversationID == "":
		amojoError(w, http.StatusBadRequest, "conversation_id is required")
		return
	case req.User == nil || req.User.ID == "" || req.User.Name == "":
		amojoError(w, http.StatusBadRequest, "user.id and user.name are required")
		return
	}
	st := a.chat
	ch := st.chats[req.ConversationID]
	if ch == nil {
		u := req.User
		ch = &Chat{ConversationID: req.ConversationID, AmoChatID: uuid(), ClientID: u.ID, ClientAmoID: uuid(),
			Name: u.Name, Avatar: u.Avatar, ProfileLink: u.ProfileLink}
		if u.Profile != nil {
			ch.Phone = u.Profile.Phone
		}
		st.chats[req.ConversationID] = ch
		st.order = append(st.order, req.ConversationID)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(mustJSON(map[string]any{"id": ch.AmoChatID, "user": map[string]any{
		"id": ch.ClientAmoID, "client_id": ch.ClientID, "name": ch.Name, "avatar": ch.Avatar, "phone": ch.Phone}}))
}

// incomingLead is what amoCRM does at the first message of a chat linked
// to no contact: a contact named and numbered as the chat's customer and
// an incoming lead for it in the main pipeline's unsorted status, on the
// account's admin. Held under s.mu.
func (s *Server) incomingLead(a *account, ch *Chat) {
	now := s.clock().Unix()
	ct := &Contact{ID: s.newID(), Name: ch.Name, ResponsibleUserID: a.installer, CreatedAt: now, UpdatedAt: now}
	if ch.Phone != "" {
		ct.Phones = []Value{{Value: ch.Phone, EnumCode: "MOB"}}
	}
	a.contacts[ct.ID] = ct
	l := &Lead{ID: s.newID(), Name: ch.Name, ResponsibleUserID: a.installer, ContactIDs: []int{ct.ID}, CreatedAt: now, UpdatedAt: now}
	if p := a.mainPipeline(); p != nil {
		l.PipelineID, l.StatusID = p.ID, p.firstStage()
		for _, st := range p.Statuses {
			if st.Type == 1 {
				l.StatusID = st.ID
				break
			}
		}
	}
	a.leads[l.ID] = l
	ct.LeadIDs = []int{l.ID}
	ch.ContactID, ch.LeadID = ct.ID, l.ID
}

// chatByID finds a chat of the account by amojo's chat id.
func (a *account) chatByID(id string) *Chat {
	if a.chat == nil || id == "" {
		return nil
	}
	for _, ch := range a.chat.chats {
		if ch.AmoChatID == id {
			return ch
		}
	}
	return nil
}

// linkChats is POST /api/v4/contacts/chats: an array of {chat_id,
// contact_id}. The whole call is refused (validation-errors by
// request_id) when any chat or contact is not the account's; a chat linked
// elsewhere moves, with a new link id.
func (s *Server) linkChats(w http.ResponseWriter, r *http.Request, c *call) {
	items, p := decodeBatch(c.body, 250)
	if p != nil {
		writeProblem(w, p)
		return
	}
	type link struct {
		chat    *Chat
		contact int
		rid     string
	}
	var todo []link
	var verrs []ValidationError
	for i, it := range items {
		e := &itemErrs{rid: requestID(it, i)}
		chatID, _ := e.str(it, "chat_id", "")
		contactID, _ := e.int(it, "contact_id", "")
		ch := c.a.chatByID(chatID)
		switch {
		case e.has("chat_id"):
		case chatID == "":
			e.add("NotBlank", "chat_id", "This value should not be blank.")
		case ch == nil:
			e.add("NotFound", "chat_id", "Chat not found.")
		}
		switch {
		case e.has("contact_id"):
		case contactID <= 0:
			e.add("NotBlank", "contact_id", "This value should not be blank.")
		case c.a.contacts[contactID] == nil:
			e.add("NotFound", "contact_id", "Entity not found.")
		}
		if e.failed() {
			verrs = append(verrs, e.result())
			continue
		}
		todo = append(todo, link{ch, contactID, e.rid})
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs)
		return
	}
	out := make([]map[string]any, 0, len(todo))
	for _, l := range todo {
		if l.chat.LinkID == 0 || l.chat.ContactID != l.contact {
			l.chat.ContactID, l.chat.LinkID = l.contact, s.newID()
		}
		out = append(out, map[string]any{"chat_id": l.chat.AmoChatID, "contact_id": l.contact, "id": l.chat.LinkID, "request_id": l.rid})
	}
	writeHAL(w, http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"chats": out}})
}

// listChatLinks is GET /api/v4/contacts/chats?contact_id= or ?chat_id=
// (one of them): the API-made links; 204 when there are none.
func (s *Server) listChatLinks(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	contact, chatID := q.Get("contact_id"), q.Get("chat_id")
	if (contact == "") == (chatID == "") {
		writeProblem(w, badQuery("contact_id", "Exactly one of contact_id and chat_id is required."))
		return
	}
	contactID := 0
	if contact != "" {
		n, err := strconv.Atoi(contact)
		if err != nil || n <= 0 {
			writeProblem(w, badQuery("contact_id", "This value should be of type int."))
			return
		}
		contactID = n
	}
	var out []map[string]any
	if c.a.chat != nil {
		for _, id := range c.a.chat.order {
			ch := c.a.chat.chats[id]
			if ch.LinkID == 0 || (contactID != 0 && ch.ContactID != contactID) || (chatID != "" && ch.AmoChatID != chatID) {
				continue
			}
			out = append(out, map[string]any{"chat_id": ch.AmoChatID, "contact_id": ch.ContactID, "id": ch.LinkID})
		}
	}
	if len(out) == 0 {
		writeNoContent(w)
		return
	}
	writeHAL(w, http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"chats": out}})
}

// FailRoute makes the next n requests of route (a pattern such as "POST
// /api/v4/leads/complex") answer status without doing their work: amoCRM
// down for one kind of call while others go through.
func (s *Server) FailRoute(route string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failRoute == nil {
		s.failRoute = map[string]routeFailure{}
	}
	s.failRoute[route] = routeFailure{status: status, n: n}
}

type routeFailure struct{ status, n int }
