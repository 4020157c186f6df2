package amocrm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The Service tells account users about waiting customers.
var _ routing.Notifier = (*Service)(nil)

// Unanswered customers become tasks, not notifications: API v4 has no
// method that puts a message into a user's notification centre (its
// notifications come from amoCRM's own events and amojo chats), while a
// task is assigned to one user, shows in the lead card, the user's task
// list and the mobile app, and amoCRM itself reminds them when its
// deadline passes. A task is also what managers close when done, so the
// reminder does not linger.

// TaskDeadline is how long after the notice a task is due: short, since
// a waiting customer is the point.
const TaskDeadline = 15 * time.Minute

// taskTypeFollowUp is amoCRM's built-in "Связаться" (follow up) type.
const taskTypeFollowUp = 1

// taskExcerptRunes bounds the quote of the customer's message in a task.
const taskExcerptRunes = 120

// taskWords are the tasks' words. %[1]s is the customer, %[2]s the
// channel, %[3]d the minutes waited.
var taskWords = map[string]map[string]string{
	"ru": {
		routing.NoticeNew:        "Ответить клиенту %[1]s: новое сообщение в канале «%[2]s»",
		routing.NoticeEscalation: "Клиент %[1]s ждёт ответа %[3]d мин. в канале «%[2]s»",
		"excerpt":                ": «%s»",
	},
	"en": {
		routing.NoticeNew:        "Answer customer %[1]s: new message in channel “%[2]s”",
		routing.NoticeEscalation: "Customer %[1]s has been waiting %[3]d min for an answer in channel “%[2]s”",
		"excerpt":                ": “%s”",
	},
}

// Notify implements routing.Notifier: one follow-up task per notice and
// user, on the customer's lead when it has one, due in TaskDeadline, all
// in one POST /api/v4/tasks (50 a call). A repeated notice (the job
// retried after amoCRM took the tasks but the answer was lost) makes a
// second task: amoCRM cannot replace one, and a duplicate reminder is
// better than a lost one.
func (s *Service) Notify(ctx context.Context, d *routing.Delivery, ns []routing.Notice) error {
	l := lang(d.Integration)
	due := time.Now().Add(TaskDeadline).Unix()
	leads, err := s.noticeLeads(ctx, d, ns)
	if err != nil {
		return err
	}
	var tasks []TaskInput
	// dialogs[i] is the dialog tasks[i] reminds of.
	var dialogs []string
	for _, n := range ns {
		lead := 0
		if n.Dialog != nil && n.Dialog.Contact != nil {
			lead = leads[n.Dialog.Contact.ID]
		}
		text := s.taskText(d, n, l)
		for _, u := range n.UserIDs {
			uid, err := strconv.Atoi(u)
			if err != nil || uid <= 0 {
				s.log.Warn("amocrm: notice for a user id that is not amoCRM's", "integration_id", d.Integration.ID, "user_id", u)
				continue
			}
			t := TaskInput{TaskTypeID: taskTypeFollowUp, Text: text, CompleteTill: due, ResponsibleUserID: uid}
			if lead != 0 {
				t.EntityID, t.EntityType = lead, "leads"
			}
			tasks = append(tasks, t)
			dialogs = append(dialogs, n.Dialog.ID)
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	for i := range tasks {
		tasks[i].RequestID = strconv.Itoa(i)
	}
	made, err := s.API(d.Integration).AddTasks(ctx, tasks)
	if bad := ItemErrors(err); bad != nil {
		// A lead deleted in the account since: the task still goes to the
		// user, without the lead (the next message makes a new one).
		// amoCRM wrote none of the refused call, so all go again.
		fixed := false
		for rid, errs := range bad {
			i, aerr := strconv.Atoi(rid)
			if aerr != nil || i < 0 || i >= len(tasks) {
				continue
			}
			for _, fe := range errs {
				if fe.Code == "NotFound" && fe.Path == "entity_id" {
					tasks[i].EntityID, tasks[i].EntityType, fixed = 0, "", true
				}
			}
		}
		if fixed {
			made, err = s.API(d.Integration).AddTasks(ctx, tasks)
		}
	}
	if rerr := s.rememberTasks(ctx, d.Integration, made, dialogs); rerr != nil {
		return rerr
	}
	return Classify(err)
}

// linkTask links a task the gateway made (local id: the task's id, one
// row per task) to the dialog whose waiting it announces (remote id: the
// dialog's id), so that the answer closes exactly the gateway's tasks.
const linkTask = "open_task"

// rememberTasks records the tasks amoCRM made (made[i] is tasks[i], in
// order) under their dialogs. Detached: the tasks exist once amoCRM
// answered, and an unrecorded one would never be closed.
func (s *Service) rememberTasks(ctx context.Context, in *store.Integration, made []Created, dialogs []string) error {
	ctx = context.WithoutCancel(ctx)
	byDialog := map[string][]string{}
	var order []string
	for i, c := range made {
		if i >= len(dialogs) || c.ID <= 0 {
			continue
		}
		if _, ok := byDialog[dialogs[i]]; !ok {
			order = append(order, dialogs[i])
		}
		byDialog[dialogs[i]] = append(byDialog[dialogs[i]], strconv.Itoa(c.ID))
	}
	for _, dl := range order {
		if err := s.store.PutLinksTo(ctx, in.ID, linkTask, byDialog[dl], dl); err != nil {
			return err
		}
	}
	return nil
}

// answerWords are the result a closed task shows: answered, or an
// operator decided that no reply is needed.
var answerWords = map[string]map[bool]string{
	"ru": {false: "Клиенту ответили", true: "Ответ не требуется"},
	"en": {false: "The customer was answered", true: "No reply needed"},
}

// noReplyNeeded says whether the dialog's waiting last ended by "no reply
// needed" rather than by an answer.
func noReplyNeeded(d *store.DialogView) bool {
	return d.NoReplyNeededAt != nil && (d.LastOutboundAt == nil || d.NoReplyNeededAt.After(*d.LastOutboundAt))
}

// The Service closes its tasks once the customer is answered.
var _ routing.Answerer = (*Service)(nil)

// Answered implements routing.Answerer: the tasks the gateway made for
// the dialog's ended waiting are completed (PATCH /api/v4/tasks) and
// forgotten, so a later answer closes nothing twice. Only the gateway's
// own tasks are touched, every user's (the first responder group's
// members each got one). Tasks made after the dialog began to wait again
// belong to the new period and stay open. A task deleted in amoCRM
// meanwhile is skipped.
func (s *Service) Answered(ctx context.Context, d *routing.Delivery, dialog *store.DialogView) error {
	in := d.Integration
	links, err := s.store.LinksTo(ctx, in.ID, linkTask, dialog.ID)
	if err != nil {
		return err
	}
	var ids []int
	var locals []string
	for _, l := range links {
		if dialog.Waiting && dialog.WaitingSince != nil && !l.CreatedAt.Before(*dialog.WaitingSince) {
			continue // the new period's
		}
		locals = append(locals, l.LocalID)
		if id, err := strconv.Atoi(l.LocalID); err == nil && id > 0 {
			ids = append(ids, id)
		}
	}
	for try := 0; len(ids) > 0; try++ {
		err = s.API(in).CompleteTasks(ctx, ids, answerWords[lang(in)][noReplyNeeded(dialog)])
		bad := ItemErrors(err)
		if bad == nil || try > 0 {
			break
		}
		// amoCRM refused the whole call: leave out the tasks it no longer
		// has and close the rest.
		var keep []int
		for i, id := range ids {
			gone := false
			for _, fe := range bad[strconv.Itoa(i)] {
				gone = gone || (fe.Code == "NotFound" && fe.Path == "id")
			}
			if !gone {
				keep = append(keep, id)
			}
		}
		if len(keep) == len(ids) {
			break
		}
		ids = keep
	}
	if err != nil {
		return Classify(err)
	}
	if len(locals) > 0 {
		s.log.Info("amocrm: tasks of an answered customer completed", "integration_id", in.ID, "dialog_id", dialog.ID, "tasks", len(ids))
	}
	// Forgotten even when the context ended: amoCRM has them completed.
	// The job ends in the same commit; with its lease lost they are
	// forgotten all the same, without the job's end.
	ctx = context.WithoutCancel(ctx)
	forget := func(st *store.Store) error { return st.DeleteLinks(ctx, in.ID, linkTask, locals) }
	if d.Job == nil {
		return forget(s.store)
	}
	err = queue.Finish(ctx, s.store, d.Job, forget)
	if errors.Is(err, queue.ErrLeaseLost) {
		return forget(s.store)
	}
	return err
}

// noticeLeads are the waiting customers' leads in this binding, by store
// contact id. Under hourly and daily mirroring a new customer's lead would
// wait for the batch: it is made now (as the batch would make it, in one
// leads/complex for all), so the task sits on the lead and the team sees
// the customer at once; the batch's notes follow into it. Under "none"
// nothing is written into amoCRM but the task.
func (s *Service) noticeLeads(ctx context.Context, d *routing.Delivery, ns []routing.Notice) (map[string]int, error) {
	leads := map[string]int{}
	var missing []*store.Contact
	for _, n := range ns {
		dv := n.Dialog
		if dv == nil || dv.Contact == nil {
			continue
		}
		if dv.CRMEntity == EntityLead {
			if id, err := strconv.Atoi(dv.CRMEntityID); err == nil {
				leads[dv.Contact.ID] = id
				continue
			}
		}
		id, err := s.remoteInt(ctx, d.Integration.ID, linkLead, d.Binding.ID+":"+dv.Contact.ID)
		if err != nil {
			return nil, err
		}
		if id != 0 {
			leads[dv.Contact.ID] = id
			continue
		}
		missing = append(missing, dv.Contact)
	}
	if len(missing) == 0 || routing.MirrorModeOf(d.Binding) == routing.MirrorNone {
		return leads, nil
	}
	made, err := s.ensureLeads(ctx, d, missing, nil, nil)
	for k, v := range made {
		leads[k] = v
	}
	if err != nil {
		// The task still goes out, without its lead: a customer whose
		// lead amoCRM refused must not also go unannounced.
		s.log.Warn("amocrm: lead for a notice", "integration_id", d.Integration.ID, "err", err)
		if errors.Is(err, routing.ErrParked) || Retryable(err) {
			return nil, err
		}
	}
	return leads, nil
}

// taskText words a notice: who waits (name and number), in which
// channel, and the start of what they wrote.
func (s *Service) taskText(d *routing.Delivery, n routing.Notice, l string) string {
	w := taskWords[l]
	who := ""
	if ct := n.Dialog.Contact; ct != nil {
		name := cleanLine(cmp.Or(ct.Name, ct.Username))
		switch {
		case name != "" && ct.Phone != "" && name != ct.Phone:
			who = name + " (" + ct.Phone + ")"
		default:
			who = cmp.Or(name, ct.Phone, ct.ExternalID)
		}
	}
	ch := cleanLine(cmp.Or(d.Binding.Name, d.Channel.Name, d.Channel.DisplayPhone))
	// To the nearest minute: the timer fires a moment after the delay,
	// and 5 min 0.3 s is "5 min", not 6.
	minutes := int(n.Waited.Round(time.Minute) / time.Minute)
	text := fmt.Sprintf(w[n.Kind], who, ch, max(minutes, 1))
	if n.Message != nil {
		r := s.render(n.Message, n.Dialog.Contact, l)
		ex := r.Text
		if ex == "" && len(r.Files) > 0 {
			ex = r.Files[0].Name
		}
		ex = cleanLine(ex)
		if rs := []rune(ex); len(rs) > taskExcerptRunes {
			ex = strings.TrimSpace(string(rs[:taskExcerptRunes])) + "…"
		}
		if ex != "" {
			text += fmt.Sprintf(w["excerpt"], ex)
		}
	}
	return text
}
