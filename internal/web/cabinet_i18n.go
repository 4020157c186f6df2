package web

import (
	"maps"
	"sort"
	"strconv"
	"strings"
)

// cabinetTexts are the cabinet's words in each language. Meta's and the
// CRMs' own reasons (a channel's "token expired") are shown as they came.
var cabinetTexts = map[string]map[string]string{
	"ru": {
		"lang_other": "English", "lang_other_code": "en",
		"product": "Switchboard", "sign_in": "Вход", "email": "Эл. почта", "password": "Пароль", "do_sign_in": "Войти",
		"bad_credentials": "Неверная почта или пароль.",
		"locked":          "Слишком много неудачных попыток. Попробуйте через 15 минут.",
		"home":            "Главная", "employees": "Сотрудники", "sign_out": "Выйти", "sign_out_everywhere": "Выйти на всех устройствах",
		"channels": "Каналы", "integrations": "Интеграции", "no_channels": "Каналов пока нет.", "no_integrations": "Интеграций пока нет.",
		"name": "Название", "type": "Тип", "state": "Состояние", "last_inbound": "Последнее входящее", "messages_24h": "Сообщений за 24 ч",
		"never": "—", "domain": "Адрес", "times_in": "Время: ",
		"st_active": "работает", "st_error": "ошибка", "st_disabled": "отключён", "st_needs_reauth": "нужна повторная авторизация", "st_uninstalled": "удалена", "st_unpaid": "аккаунт CRM не оплачен",
		"role": "Роль", "role_owner": "владелец", "role_admin": "администратор", "role_manager": "менеджер",
		"person_name": "Имя", "added": "Добавлен", "add_employee": "Добавить сотрудника", "add": "Добавить", "delete": "Удалить",
		"password_optional": "Пароль (не меньше 10 символов; пусто — сгенерировать)", "you": "вы",
		"generated": "Пароль нового сотрудника (показан один раз):", "added_ok": "Сотрудник добавлен.", "deleted_ok": "Сотрудник удалён.",
		"crm_links":      "Пользователь CRM",
		"confirm_delete": "Удалить сотрудника?",
	},
	"en": {
		"lang_other": "Русский", "lang_other_code": "ru",
		"product": "Switchboard", "sign_in": "Sign in", "email": "Email", "password": "Password", "do_sign_in": "Sign in",
		"bad_credentials": "Wrong email or password.",
		"locked":          "Too many failed attempts. Try again in 15 minutes.",
		"home":            "Home", "employees": "Employees", "sign_out": "Sign out", "sign_out_everywhere": "Sign out everywhere",
		"channels": "Channels", "integrations": "Integrations", "no_channels": "No channels yet.", "no_integrations": "No integrations yet.",
		"name": "Name", "type": "Type", "state": "State", "last_inbound": "Last inbound message", "messages_24h": "Messages in 24 h",
		"never": "—", "domain": "Address", "times_in": "Times in ",
		"st_active": "active", "st_error": "error", "st_disabled": "disabled", "st_needs_reauth": "needs re-authorisation", "st_uninstalled": "uninstalled", "st_unpaid": "CRM account not paid",
		"role": "Role", "role_owner": "owner", "role_admin": "admin", "role_manager": "manager",
		"person_name": "Name", "added": "Added", "add_employee": "Add an employee", "add": "Add", "delete": "Delete",
		"password_optional": "Password (at least 10 characters; empty to generate one)", "you": "you",
		"generated": "The new employee's password (shown once):", "added_ok": "Employee added.", "deleted_ok": "Employee deleted.",
		"crm_links":      "CRM user",
		"confirm_delete": "Delete this employee?",
	},
}

// refusals are the cabinet's refusal pages, in both languages at once: a
// refused request may come before anyone knows the reader's language.
// The pages' texts are kept per page in their own files (the admin pages,
// the templates page) and joined into cabinetTexts once, here, so a page's
// file never has to know the others'.
func init() {
	for _, more := range []map[string]map[string]string{adminTexts, templateTexts, settingsTexts, chatTexts, quickTexts, accountTexts, workspaceTexts} {
		for lang, texts := range more {
			maps.Copy(cabinetTexts[lang], texts)
		}
	}
}

var refusals = map[string][2]string{
	"csrf":      {"Запрос отклонён: форма устарела или пришла с другого сайта. Обновите страницу и попробуйте снова.", "Request refused: the form is stale or came from another site. Reload the page and try again."},
	"forbidden": {"Доступ запрещён: эта страница для владельцев и администраторов.", "Access denied: this page is for owners and admins."},
	"language":  {"Неизвестный язык.", "Unknown language."},
	"internal":  {"Внутренняя ошибка. Попробуйте позже.", "Internal error. Try again later."},
	"not_found": {"Не найдено.", "Not found."},
	"read_only": {"В этом диалоге вам доступен только просмотр.", "You can only read this conversation."},
}

// acceptLanguage picks ru or en from an Accept-Language header: the one
// with the higher weight, Russian on a tie or when neither is named.
func acceptLanguage(h string) string {
	best, bestQ := "ru", -1.0
	type tag struct {
		lang string
		q    float64
		pos  int
	}
	var tags []tag
	for i, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(name), "-")
		if base == "ru" || base == "en" {
			tags = append(tags, tag{base, q, i})
		}
	}
	sort.SliceStable(tags, func(a, b int) bool { return tags[a].q > tags[b].q })
	for _, t := range tags {
		if t.q > bestQ || (t.q == bestQ && t.lang == "ru") {
			best, bestQ = t.lang, t.q
		}
	}
	if bestQ <= 0 {
		return "ru"
	}
	return best
}
