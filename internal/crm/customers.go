package crm

import "github.com/switchboard/switchboard/internal/store"

// ByCustomer groups the messages of one mirror call or batch by customer:
// order lists the customers (store contact ids) in the order of their
// first message, by holds each one's messages in the order given (oldest
// first). A CRM writes each customer's messages into that customer's own
// record, and must keep them in this order.
func ByCustomer(msgs []store.MessageView) (order []string, by map[string][]store.MessageView) {
	by = map[string][]store.MessageView{}
	for _, m := range msgs {
		if _, ok := by[m.ContactID]; !ok {
			order = append(order, m.ContactID)
		}
		by[m.ContactID] = append(by[m.ContactID], m)
	}
	return order, by
}
