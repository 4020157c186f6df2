package chatview

import "strings"

// texts are the chat view's words in Russian and English. Refusals are
// "err_" + the error's code; every code a send can meet has both.
var texts = map[string]map[string]string{
	"ru": {
		"conversation": "Переписка", "no_messages": "Сообщений с этим клиентом пока нет.", "write": "Написать клиенту", "emoji": "Эмодзи",
		"no_target": "У клиента нет номера телефона или активного канала.",
		"channel":   "Канал", "text": "Текст сообщения", "send": "Отправить", "file": "Файл", "file_hint": "до %d МБ",
		"template": "Шаблон", "template_none": "— без шаблона —", "template_pick": "Окно 24 часов закрыто: выберите шаблон WhatsApp и заполните переменные.",
		"template_none_synced": "У этого канала нет утверждённых шаблонов. Обновите их в кабинете Switchboard.",
		"variable":             "Переменная", "window_closed_short": "окно 24 ч закрыто",
		"status_queued": "в очереди", "status_sent": "отправлено", "status_delivered": "доставлено", "status_read": "прочитано",
		"status_failed": "не доставлено", "status_deleted": "удалено",
		"author_api": "API", "author_auto": "Автоответ", "author_robot_bitrix24": "Робот Битрикс24", "author_robot_amocrm": "Робот amoCRM",
		"author_robot": "Робот CRM", "author_user": "Пользователь #%s",
		"sent":                      "Сообщение поставлено в очередь на отправку.",
		"hidden_other":              "Этот диалог ведёт другой сотрудник.",
		"read_only":                 "В этом канале вам доступен только просмотр переписки: писать клиенту может сотрудник с правом отправки.",
		"rights_by":                 "Права настраивает администратор Switchboard.",
		"template_omitted":          "Не показаны шаблоны с переменной в заголовке (отсюда их не отправить): %s.",
		"file_too_big":              "Файл больше %d МБ.",
		"err_internal":              "Внутренняя ошибка. Попробуйте позже.",
		"err_quick_reply_not_found": "Этого быстрого ответа больше нет.",
		"quick":                     "Быстрые ответы", "quick_pick": "— быстрый ответ —", "quick_file": "Будет приложен файл:",
		"live_lost":                      "Нет связи с сервером: новые сообщения появятся, когда связь вернётся.",
		"err_channel_read_only":          "В этом канале вам доступен только просмотр переписки; отправлять сообщения нельзя.",
		"err_access_denied":              "У вас нет доступа к переписке с этим клиентом в этом канале.",
		"err_recipient_foreign":          "Этот получатель не относится к записи CRM.",
		"err_customer_other_branch":      "Этот клиент относится к другому филиалу канала.",
		"err_channel_not_found":          "Такого канала нет в рабочем пространстве.",
		"err_channel_disabled":           "Канал отключён.",
		"err_channel_error":              "Канал в состоянии ошибки; проверьте его настройки.",
		"err_text_required":              "Введите текст сообщения, приложите файл или выберите шаблон.",
		"err_text_too_long":              "Текст сообщения слишком длинный.",
		"err_caption_too_long":           "Подпись к файлу длиннее 1024 символов.",
		"err_ambiguous_message":          "Отправьте либо текст с файлом, либо шаблон.",
		"err_template_invalid":           "Шаблон указан неверно: нужны имя и язык.",
		"err_template_unsupported":       "В этом канале шаблоны не поддерживаются.",
		"err_template_unknown":           "Такого утверждённого шаблона у канала нет. Обновите страницу.",
		"err_template_variable_required": "Заполните все переменные шаблона.",
		"err_invalid_phone":              "Номер телефона указан неверно.",
		"err_invalid_recipient":          "Получатель указан неверно.",
		"err_to_required":                "Не указан получатель.",
		"err_file_too_large":             "Файл слишком большой.",
		"err_body_too_large":             "Файл слишком большой.",
		"err_media_too_large":            "Мессенджер не примет файл такого размера.",
		"err_media_type_unsupported":     "Мессенджер не примет файл этого типа; попробуйте отправить его архивом или PDF.",
		"err_media_type_invalid":         "Мессенджер не примет файл этого типа.",
		"err_form_invalid":               "Форма пришла повреждённой. Обновите страницу и попробуйте снова.",
	},
	"en": {
		"conversation": "Conversation", "no_messages": "No messages with this customer yet.", "write": "Write to the customer", "emoji": "Emoji",
		"no_target": "The customer has no phone number or active channel.",
		"channel":   "Channel", "text": "Message text", "send": "Send", "file": "File", "file_hint": "up to %d MB",
		"template": "Template", "template_none": "— no template —", "template_pick": "The 24-hour window is closed: choose a WhatsApp template and fill in its variables.",
		"template_none_synced": "This channel has no approved templates. Refresh them in the Switchboard cabinet.",
		"variable":             "Variable", "window_closed_short": "24 h window closed",
		"status_queued": "queued", "status_sent": "sent", "status_delivered": "delivered", "status_read": "read",
		"status_failed": "not delivered", "status_deleted": "deleted",
		"author_api": "API", "author_auto": "Auto-reply", "author_robot_bitrix24": "Bitrix24 robot", "author_robot_amocrm": "amoCRM robot",
		"author_robot": "CRM robot", "author_user": "User #%s",
		"sent":                      "The message is queued for sending.",
		"hidden_other":              "Another employee handles this conversation.",
		"read_only":                 "You can read this channel's conversations but not write in them: a colleague with send access can.",
		"rights_by":                 "Switchboard's admin sets the access rights.",
		"template_omitted":          "Templates with a variable in their header are not shown (they cannot be sent from here): %s.",
		"file_too_big":              "The file is over %d MB.",
		"err_internal":              "Internal error. Try again later.",
		"err_quick_reply_not_found": "This quick reply is gone.",
		"quick":                     "Quick replies", "quick_pick": "— quick reply —", "quick_file": "This file will be attached:",
		"live_lost":                      "No connection to the server: new messages will show when it is back.",
		"err_channel_read_only":          "You can read this channel's conversations but not send in them.",
		"err_access_denied":              "You have no access to the conversation with this customer on this channel.",
		"err_recipient_foreign":          "This recipient does not belong to the CRM record.",
		"err_customer_other_branch":      "This customer belongs to another branch of the channel.",
		"err_channel_not_found":          "There is no such channel in the workspace.",
		"err_channel_disabled":           "The channel is disabled.",
		"err_channel_error":              "The channel is in error; check its settings.",
		"err_text_required":              "Type a message, attach a file or choose a template.",
		"err_text_too_long":              "The message is too long.",
		"err_caption_too_long":           "A file's caption is limited to 1024 characters.",
		"err_ambiguous_message":          "Send either a text with a file, or a template.",
		"err_template_invalid":           "The template is wrong: it needs a name and a language.",
		"err_template_unsupported":       "This channel does not support templates.",
		"err_template_unknown":           "The channel has no such approved template. Reload the page.",
		"err_template_variable_required": "Fill in every variable of the template.",
		"err_invalid_phone":              "The phone number is not valid.",
		"err_invalid_recipient":          "The recipient is not valid.",
		"err_to_required":                "No recipient given.",
		"err_file_too_large":             "The file is too large.",
		"err_body_too_large":             "The file is too large.",
		"err_media_too_large":            "The messenger does not take a file this large.",
		"err_media_type_unsupported":     "The messenger does not take files of this type; try sending it zipped or as a PDF.",
		"err_media_type_invalid":         "The messenger does not take files of this type.",
		"err_form_invalid":               "The form arrived damaged. Reload the page and try again.",
	},
}

// Texts are the chat view's words in lang: English for "en", Russian
// otherwise.
func Texts(lang string) map[string]string {
	if strings.EqualFold(lang, "en") {
		return texts["en"]
	}
	return texts["ru"]
}

// ErrText words a send's refusal code in lang; false for a code the chat
// view does not know.
func ErrText(lang, code string) (string, bool) {
	t, ok := Texts(lang)["err_"+code]
	return t, ok
}
