package web

// chatTexts are the shared chat's words (the chat view's own come from
// internal/crm/chatview); they join cabinetTexts at start-up.
var chatTexts = map[string]map[string]string{
	"ru": {
		"chat": "Чат", "chat_title": "Общий чат", "chat_f_all": "Все", "chat_f_mine": "Мои", "chat_f_unassigned": "Без ответственного",
		"chat_empty": "Диалогов нет.", "chat_pick": "Выберите диалог слева.", "chat_back": "← Диалоги",
		"chat_no_links": "Ваша учётная запись не связана ни с одним пользователем CRM, поэтому диалоги каналов, подключённых к CRM, не показаны: права доступа к каналам и видимость диалогов задаются для пользователей CRM. Попросите администратора связать вас с вашим пользователем CRM.",
		"chat_unread":   "непрочитанных", "chat_wait": "ждёт", "chat_wait_now": "ждёт ответа", "chat_min": "мин", "chat_h": "ч", "chat_d": "дн",
		"chat_no_reply": "Ответ не нужен", "chat_owner": "Ответственный", "chat_unassigned": "не назначен",
		"chat_live_lost":     "Связь потеряна, переподключаемся…",
		"chat_sending":       "Отправляем…",
		"chat_mine_unlinked": "«Мои» — диалоги вашего пользователя CRM, а ваша учётная запись ни с одним не связана.",
	},
	"en": {
		"chat": "Chat", "chat_title": "Shared chat", "chat_f_all": "All", "chat_f_mine": "Mine", "chat_f_unassigned": "Unassigned",
		"chat_empty": "No dialogs.", "chat_pick": "Choose a dialog on the left.", "chat_back": "← Dialogs",
		"chat_no_links": "Your account is not linked to any CRM user, so the dialogs of channels bound to a CRM are not shown: channel access and dialog visibility are set per CRM user. Ask an admin to link you to your CRM user.",
		"chat_unread":   "unread", "chat_wait": "waits", "chat_wait_now": "waits for an answer", "chat_min": "min", "chat_h": "h", "chat_d": "d",
		"chat_no_reply": "No reply needed", "chat_owner": "Owner", "chat_unassigned": "unassigned",
		"chat_live_lost":     "Connection lost, reconnecting…",
		"chat_sending":       "Sending…",
		"chat_mine_unlinked": "“Mine” are the dialogs your CRM user owns, and your account is linked to none.",
	},
}
