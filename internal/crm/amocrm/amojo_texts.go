package amocrm

import (
	"fmt"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/crm/chatview"
	"github.com/switchboard/switchboard/internal/fault"
)

// amojoTexts are what a manager reads in amoCRM's chat under a message of
// theirs the gateway could not send (delivery_status -1), in the
// account's language; amojo's error codes stay as they are.
var amojoTexts = map[string]map[string]string{
	"ru": {
		"not_ours":         "Этот чат начат не через Switchboard; ответить из него нельзя.",
		"customer_deleted": "Клиент удалён из Switchboard; сообщение не отправлено.",
		"unbound":          "Канал больше не подключён к этому аккаунту amoCRM; сообщение не отправлено.",
		"uninstalled":      "Интеграция Switchboard удалена из этого аккаунта amoCRM; сообщение не отправлено. Установите виджет снова.",
		"unsupported":      "Switchboard не может отправить сообщение такого типа; отправьте текст или файл.",
		"file_link":        "Ссылка на файл не подходит для скачивания; приложите файл снова.",
		"file_unavailable": "Файл не удалось скачать из amoCRM; приложите его снова.",
		"send_failed":      "Сообщение не отправлено: %s",
		"not_delivered":    "Мессенджер не доставил сообщение: %s",
		"no_reason":        "мессенджер не назвал причину",
	},
	"en": {
		"not_ours":         "This chat was not started by Switchboard; it cannot be answered from here.",
		"customer_deleted": "The customer was deleted from Switchboard; the message was not sent.",
		"unbound":          "The channel is no longer connected to this amoCRM account; the message was not sent.",
		"uninstalled":      "The Switchboard integration was removed from this amoCRM account; the message was not sent. Install the widget again.",
		"unsupported":      "Switchboard cannot send this kind of message; send text or a file.",
		"file_link":        "The file's link cannot be downloaded; attach the file again.",
		"file_unavailable": "The file could not be downloaded from amoCRM; attach it again.",
		"send_failed":      "The message was not sent: %s",
		"not_delivered":    "The messenger did not deliver the message: %s",
		"no_reason":        "the messenger gave no reason",
	},
}

// amojoText is a text of amojoTexts in l ("en", else Russian).
func amojoText(l, key string) string {
	if l == "en" {
		return amojoTexts["en"][key]
	}
	return amojoTexts["ru"][key]
}

// amojoCodeKeys are the amojoTexts of the refusals of a manager's message
// that only this package makes.
var amojoCodeKeys = map[string]string{
	"message_unsupported": "unsupported",
	"media_url_invalid":   "file_link",
	"media_unavailable":   "file_unavailable",
}

// refusalText words a refused manager's message in l for a channel of
// type typ: the words of the gateway's pages where they have the refusal's
// code, else the refusal's own (English) message after a sentence in l.
func refusalText(l, typ string, fe *fault.Error) string {
	if fe.Code == "window_closed" {
		return crm.WindowClosed(l, typ)
	}
	if key, ok := amojoCodeKeys[fe.Code]; ok {
		return amojoText(l, key)
	}
	if t, ok := chatview.ErrText(l, fe.Code); ok {
		return t
	}
	if l == "en" {
		return fe.Message
	}
	return fmt.Sprintf(amojoText(l, "send_failed"), fe.Message)
}
