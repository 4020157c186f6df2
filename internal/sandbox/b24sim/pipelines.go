package b24sim

import (
	"fmt"
	"slices"
)

// AddDealCategory adds a deal pipeline to a running portal, as an admin
// would in the CRM settings: crm.category.list lists it and
// crm.status.list (ENTITY_ID DEAL_STAGE_{id}) its NEW, PREPARATION, WON
// and LOSE stages (C{id}:NEW...). An id already taken, or 0 (the default
// pipeline, always there), is an error.
func (s *Server) AddDealCategory(memberID string, c DealCategory) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		return err
	}
	if c.ID <= 0 || slices.ContainsFunc(p.categories, func(have DealCategory) bool { return have.ID == c.ID }) {
		return fmt.Errorf("b24sim: add deal category: id %d is taken or not positive", c.ID)
	}
	p.categories = append(p.categories, c)
	p.seedDealStagesLocked(c.ID)
	return nil
}

// ruNames are the names a Russian portal gives its default pipeline, deal
// stages and lead statuses (Bitrix24 names them in the portal's language
// at creation), by kind and code.
var ruNames = map[string]string{
	"CATEGORY:0":                    "Общая",
	"DEAL_STAGE:NEW":                "Новая",
	"DEAL_STAGE:PREPARATION":        "Подготовка документов",
	"DEAL_STAGE:PREPAYMENT_INVOICE": "Счёт на предоплату",
	"DEAL_STAGE:EXECUTING":          "В работе",
	"DEAL_STAGE:FINAL_INVOICE":      "Финальный счёт",
	"DEAL_STAGE:WON":                "Сделка успешна",
	"DEAL_STAGE:LOSE":               "Сделка провалена",
	"DEAL_STAGE:APOLOGY":            "Анализ причины провала",
	"STATUS:NEW":                    "Не обработан",
	"STATUS:IN_PROCESS":             "В работе",
	"STATUS:PROCESSED":              "Обработан",
	"STATUS:JUNK":                   "Некачественный лид",
	"STATUS:CONVERTED":              "Качественный лид",
}

// localName is a built-in name in the portal's language: Russian on a
// Russian portal, else English.
func (p *Portal) localName(kind, code, en string) string {
	if p.lang == "ru" {
		if v, ok := ruNames[kind+":"+code]; ok {
			return v
		}
	}
	return en
}

// SetDealStage moves a deal to a stage as a manager would in the UI (no
// event is posted): STAGE_SEMANTIC_ID and CLOSED follow the stage, so a
// WON or LOSE stage closes the deal. It is how tests close a record.
func (s *Server) SetDealStage(memberID string, dealID int, stageID string) error {
	return s.setField(memberID, kindDeal, dealID, "STAGE_ID", stageID)
}

// SetLeadStatus moves a lead to a status (CONVERTED and JUNK close it:
// STATUS_SEMANTIC_ID S and F), as SetDealStage does for deals.
func (s *Server) SetLeadStatus(memberID string, leadID int, statusID string) error {
	return s.setField(memberID, kindLead, leadID, "STATUS_ID", statusID)
}

func (s *Server) setField(memberID string, k entityKind, id int, field, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.portalLocked(memberID)
	if err != nil {
		return err
	}
	row := p.table(k).byID(id)
	if row == nil {
		return fmt.Errorf("b24sim: no %s %d", k.name(), id)
	}
	p.applyFieldsLocked(k, row, phpListKV(field, value), s.clock())
	return nil
}
