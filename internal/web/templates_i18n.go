package web

// templateTexts are the templates page's words; "tpl_" + Meta's status is
// that status in the reader's language. They join cabinetTexts at start-up.
var templateTexts = map[string]map[string]string{
	"ru": {
		"templates": "Шаблоны сообщений", "templates_of": "Шаблоны WhatsApp канала", "tpl_name": "Название", "tpl_language": "Язык",
		"tpl_category": "Категория", "tpl_status": "Статус", "tpl_variables": "Переменных", "tpl_synced": "Обновлено",
		"tpl_refresh": "Обновить из Meta", "no_templates": "Шаблонов пока нет: нажмите «Обновить из Meta».",
		"templates_refreshed": "Шаблоны обновлены из Meta.",
		"templates_hint":      "Шаблоны создаются и проходят проверку в WhatsApp Manager; здесь их копия, она обновляется раз в сутки и по кнопке. Вне 24-часового окна можно отправить только одобренный шаблон.",
		"tpl_APPROVED":        "одобрен", "tpl_PENDING": "на проверке", "tpl_REJECTED": "отклонён", "tpl_PAUSED": "приостановлен",
		"tpl_DISABLED": "отключён", "tpl_IN_APPEAL": "обжалуется",
		"e_templates_whatsapp_only": "Шаблоны сообщений есть только у каналов WhatsApp.",
		"e_templates_token_refused": "Meta не выдала шаблоны с токеном канала: замените токен или проверьте WABA ID. Прежний список сохранён.",
		"e_templates_unavailable":   "Не удалось связаться с Meta. Прежний список сохранён; попробуйте ещё раз.",
		"e_channel_disabled":        "Канал отключён: включите его, чтобы обновить шаблоны.",
	},
	"en": {
		"templates": "Message templates", "templates_of": "WhatsApp templates of channel", "tpl_name": "Name", "tpl_language": "Language",
		"tpl_category": "Category", "tpl_status": "Status", "tpl_variables": "Variables", "tpl_synced": "Synced",
		"tpl_refresh": "Refresh from Meta", "no_templates": "No templates yet: press “Refresh from Meta”.",
		"templates_refreshed": "Templates refreshed from Meta.",
		"templates_hint":      "Templates are created and reviewed in WhatsApp Manager; this is their copy, refreshed daily and with the button. Outside the 24-hour window only an approved template can be sent.",
		"tpl_APPROVED":        "approved", "tpl_PENDING": "in review", "tpl_REJECTED": "rejected", "tpl_PAUSED": "paused",
		"tpl_DISABLED": "disabled", "tpl_IN_APPEAL": "in appeal",
		"e_templates_whatsapp_only": "Only WhatsApp channels have message templates.",
		"e_templates_token_refused": "Meta refused to list the templates with the channel's token: replace the token or check the WABA ID. The previous list was kept.",
		"e_templates_unavailable":   "Could not reach Meta. The previous list was kept; try again.",
		"e_channel_disabled":        "The channel is disabled: enable it to refresh its templates.",
	},
}
