package web

// workspaceTexts are the workspace settings page's words; they join
// cabinetTexts (see its init).
var workspaceTexts = map[string]map[string]string{
	"ru": {
		"ws_nav": "Настройки", "ws_title": "Настройки рабочего пространства",
		"ws_name": "Название", "ws_timezone": "Часовой пояс",
		"ws_timezone_hint": "По нему показывается время в кабинете и в окнах CRM, считаются часы лимита диалогов и пакетного переноса сообщений в CRM.",
		"ws_phones":        "Номера телефонов, которые вводят сотрудники",
		"ws_trunk8":        "Номер с 8 в начале (89161234567) — это +7 (Россия и Казахстан)",
		"ws_trunk8_hint":   "Снимите, если 8 в начале номера у ваших клиентов — начало кода страны или города.",
		"ws_region":        "Страна номеров без кода страны",
		"ws_limit":         "Новых диалогов на канал в час",
		"ws_limit_hint":    "0 — без ограничения. Сообщения сверх лимита ждут следующего часа.",
		"ws_save":          "Сохранить", "ws_saved": "Настройки сохранены.",
		"e_timezone_invalid":               "Выберите часовой пояс из списка.",
		"e_phone_region_invalid":           "Выберите страну из списка.",
		"e_dialogs_per_hour_limit_invalid": "Лимит диалогов — целое число от 0 до 100000.",
		"country_RU":                       "Россия", "country_KZ": "Казахстан", "country_UZ": "Узбекистан", "country_KG": "Киргизия",
		"country_TJ": "Таджикистан", "country_TM": "Туркмения", "country_BY": "Беларусь", "country_AM": "Армения",
		"country_AZ": "Азербайджан", "country_GE": "Грузия", "country_MD": "Молдова", "country_TR": "Турция",
		"country_AE": "ОАЭ", "country_DE": "Германия", "country_GB": "Великобритания", "country_US": "США",
	},
	"en": {
		"ws_nav": "Settings", "ws_title": "Workspace settings",
		"ws_name": "Name", "ws_timezone": "Time zone",
		"ws_timezone_hint": "Times in the cabinet and in the CRM windows are shown in it; the hours of the dialog limit and of batched mirroring into the CRM go by it.",
		"ws_phones":        "Phone numbers your employees type",
		"ws_trunk8":        "A number starting with 8 (89161234567) is +7 (Russia and Kazakhstan)",
		"ws_trunk8_hint":   "Clear it if, for your customers, a leading 8 starts a country or area code.",
		"ws_region":        "Country of numbers typed without a country code",
		"ws_limit":         "New dialogs per channel per hour",
		"ws_limit_hint":    "0 means no limit. Messages over the limit wait for the next hour.",
		"ws_save":          "Save", "ws_saved": "Settings saved.",
		"e_timezone_invalid":               "Choose a time zone from the list.",
		"e_phone_region_invalid":           "Choose a country from the list.",
		"e_dialogs_per_hour_limit_invalid": "The dialog limit is a whole number from 0 to 100000.",
		"country_RU":                       "Russia", "country_KZ": "Kazakhstan", "country_UZ": "Uzbekistan", "country_KG": "Kyrgyzstan",
		"country_TJ": "Tajikistan", "country_TM": "Turkmenistan", "country_BY": "Belarus", "country_AM": "Armenia",
		"country_AZ": "Azerbaijan", "country_GE": "Georgia", "country_MD": "Moldova", "country_TR": "Turkey",
		"country_AE": "UAE", "country_DE": "Germany", "country_GB": "United Kingdom", "country_US": "USA",
	},
}
