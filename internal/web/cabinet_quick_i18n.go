package web

// quickTexts are the Templates page's quick-reply words; they join
// cabinetTexts at start-up.
var quickTexts = map[string]map[string]string{
	"ru": {
		"nav_templates": "Шаблоны", "quick_title": "Быстрые ответы",
		"quick_hint": "Быстрые ответы видны всем сотрудникам в общем чате и в окне чата в карточке CRM: выбор ответа подставляет его текст, а файл ответа прикладывается при отправке.",
		"quick_none": "Быстрых ответов пока нет.",
		"quick_name": "Название", "quick_text": "Текст", "quick_file": "Файл", "quick_file_hint": "необязательно, до %d МБ",
		"quick_add": "Добавить ответ", "quick_save": "Сохранить", "quick_delete": "Удалить", "quick_edit": "Изменить",
		"quick_drop_file": "убрать файл", "quick_new": "Новый быстрый ответ",
		"quick_added": "Быстрый ответ добавлен.", "quick_saved": "Быстрый ответ сохранён.", "quick_deleted": "Быстрый ответ удалён.",
		"quick_wa_templates": "Шаблоны WhatsApp по каналам", "quick_no_wa": "Каналов WhatsApp нет.",
		"e_quick_title_required": "Укажите название быстрого ответа.",
		"e_quick_title_too_long": "Название — не длиннее 60 символов.",
		"e_quick_text_too_long":  "Текст — не длиннее 4096 символов.",
		"e_quick_empty":          "Нужен текст или файл.",
		"e_quick_file_too_large": "Файл слишком большой.",
		"e_quick_file_empty":     "Файл пустой.",
		"quick_file_refused":     "Файл «%s» не подойдёт: WhatsApp не принимает файлы этого типа. Подойдут картинки JPEG и PNG, видео MP4 и 3GP, звук AAC, AMR, MP3, M4A и OGG, документы PDF, TXT, Word, Excel и PowerPoint.",
		"e_media_too_large":      "Файл больше, чем WhatsApp принимает для файлов этого вида.",
		"e_quick_replies_full":   "В рабочем пространстве уже 200 быстрых ответов: удалите ненужные.",
	},
	"en": {
		"nav_templates": "Templates", "quick_title": "Quick replies",
		"quick_hint": "Quick replies are there for every employee in the shared chat and in the chat on a CRM card: picking one fills in its text, and its file is attached when sent.",
		"quick_none": "No quick replies yet.",
		"quick_name": "Title", "quick_text": "Text", "quick_file": "File", "quick_file_hint": "optional, up to %d MB",
		"quick_add": "Add reply", "quick_save": "Save", "quick_delete": "Delete", "quick_edit": "Edit",
		"quick_drop_file": "remove the file", "quick_new": "New quick reply",
		"quick_added": "Quick reply added.", "quick_saved": "Quick reply saved.", "quick_deleted": "Quick reply deleted.",
		"quick_wa_templates": "WhatsApp templates by channel", "quick_no_wa": "No WhatsApp channels.",
		"e_quick_title_required": "Give the quick reply a title.",
		"e_quick_title_too_long": "The title is limited to 60 characters.",
		"e_quick_text_too_long":  "The text is limited to 4096 characters.",
		"e_quick_empty":          "A text or a file is needed.",
		"e_quick_file_too_large": "The file is too large.",
		"e_quick_file_empty":     "The file is empty.",
		"quick_file_refused":     "The file “%s” will not do: WhatsApp does not take files of this type. It takes JPEG and PNG pictures, MP4 and 3GP videos, AAC, AMR, MP3, M4A and OGG audio, and PDF, TXT, Word, Excel and PowerPoint documents.",
		"e_media_too_large":      "The file is larger than WhatsApp takes for files of this kind.",
		"e_quick_replies_full":   "The workspace has 200 quick replies already: delete some first.",
	},
}
