package web

// accountTexts are the words of editing people and of one's own account
// page; they join cabinetTexts at start-up.
var accountTexts = map[string]map[string]string{
	"ru": {
		"last_webhook": "Последний вебхук", "last_webhook_hint": "Когда Meta последний раз присылала вебхук этого канала (сообщения или статусы), с точностью до минуты",
		"edit": "Изменить", "saved_ok": "Изменения сохранены.",
		"new_password_optional": "Новый пароль (пусто — придумаем сами)", "reset_password": "Сбросить пароль",
		"generated_for":     "Новый пароль %s (показан один раз, прежние входы завершены):",
		"password_reset_ok": "Пароль %s сменён, все входы этого сотрудника завершены.",
		"my_account":        "Моя учётная запись", "change_password": "Сменить пароль",
		"current_password": "Текущий пароль", "new_password": "Новый пароль",
		"password_change_hint":     "Не короче 10 символов. Входы на других устройствах завершатся.",
		"own_password_ok":          "Пароль сменён. Входы на других устройствах завершены.",
		"e_current_password_wrong": "Текущий пароль неверен.",
		"e_password_locked":        "Слишком много неудачных попыток; попробуйте через 15 минут.",
		"e_password_too_short":     "Пароль — не короче 10 символов.",
		"e_password_too_long":      "Пароль слишком длинный.",
		"e_last_owner":             "В рабочем пространстве должен остаться хотя бы один владелец: сначала назначьте владельцем другого сотрудника.",
		"e_person_name_invalid":    "Имя слишком длинное или содержит недопустимые символы.",
		"e_role_invalid":           "Роль — владелец, администратор или менеджер.",
	},
	"en": {
		"last_webhook": "Last webhook", "last_webhook_hint": "When Meta last sent a webhook for this channel (messages or statuses), to the minute",
		"edit": "Edit", "saved_ok": "Changes saved.",
		"new_password_optional": "New password (empty: we make one)", "reset_password": "Reset password",
		"generated_for":     "The new password of %s (shown once; their sessions ended):",
		"password_reset_ok": "The password of %s was changed and all their sessions ended.",
		"my_account":        "My account", "change_password": "Change password",
		"current_password": "Current password", "new_password": "New password",
		"password_change_hint":     "At least 10 characters. Sessions on other devices end.",
		"own_password_ok":          "Password changed. Sessions on other devices ended.",
		"e_current_password_wrong": "The current password is wrong.",
		"e_password_locked":        "Too many failed attempts; try again in 15 minutes.",
		"e_password_too_short":     "The password needs at least 10 characters.",
		"e_password_too_long":      "The password is too long.",
		"e_last_owner":             "A workspace keeps at least one owner: make another employee owner first.",
		"e_person_name_invalid":    "The name is too long or has characters that are not allowed.",
		"e_role_invalid":           "The role is owner, admin or manager.",
	},
}
