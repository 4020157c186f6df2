package bitrix24

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
)

// choice is one option of a select on the app page.
type choice struct {
	ID, Name string
	// Group is the deal pipeline a stage belongs to ("" for lead statuses).
	Group string
}

// portalChoices are the portal's Open Lines, deal pipelines and stages,
// offered on the app page instead of ids typed by hand. A part the portal
// refused is marked not OK: the page then takes that id as typed, and
// the save checks only its form.
type portalChoices struct {
	Lines     []choice
	LinesOK   bool
	Pipelines []choice
	// Stages are every pipeline's stages, each with its pipeline in Group.
	Stages   []choice
	StagesOK bool // pipelines and their stages
	Statuses []choice
	StatusOK bool // lead statuses
}

// maxPipelines bounds the stage lists read in one batch (Bitrix24 takes
// up to 50 commands in one).
const maxPipelines = 50

// loadChoices reads the choices with the portal's stored tokens: one
// batch for the lines, the pipelines, the lead statuses and the default
// pipeline's stages, and a second one only when the portal has more
// pipelines (crm.status.list takes one ENTITY_ID per call, and a batch
// cannot loop over an earlier command's result).
func (s *Service) loadChoices(ctx context.Context, in *store.Integration) portalChoices {
	var pc portalChoices
	res, err := s.client.Batch(ctx, in.ID, []BatchCommand{
		{Name: "lines", Method: "imopenlines.config.list.get", Params: map[string]any{"PARAMS": map[string]any{"select": []string{"ID", "LINE_NAME", "ACTIVE"}}}},
		{Name: "pipelines", Method: "crm.category.list", Params: map[string]any{"entityTypeId": 2}},
		{Name: "statuses", Method: "crm.status.list", Params: stageFilter("STATUS")},
		{Name: "stages_0", Method: "crm.status.list", Params: stageFilter("DEAL_STAGE")},
	}, false)
	if err != nil {
		s.log.Warn("bitrix24 app page: portal choices", "integration_id", in.ID, "err", err)
		return pc
	}
	var lines []struct {
		ID       json.RawMessage `json:"ID"`
		LineName string          `json:"LINE_NAME"`
	}
	if err := res.Decode("lines", &lines); err != nil {
		s.log.Warn("bitrix24 app page: open lines", "integration_id", in.ID, "err", err)
	} else {
		pc.LinesOK = true
		for _, l := range lines {
			id := rawID(l.ID)
			pc.Lines = append(pc.Lines, choice{ID: id, Name: "#" + id + " " + l.LineName})
		}
	}
	if err := decodeStages(res, "statuses", "", &pc.Statuses); err != nil {
		s.log.Warn("bitrix24 app page: lead statuses", "integration_id", in.ID, "err", err)
	} else {
		pc.StatusOK = true
	}
	var cats struct {
		Categories []struct {
			ID   json.RawMessage `json:"id"`
			Name string          `json:"name"`
		} `json:"categories"`
	}
	if err := res.Decode("pipelines", &cats); err != nil {
		s.log.Warn("bitrix24 app page: pipelines", "integration_id", in.ID, "err", err)
		return pc
	}
	var more []BatchCommand
	for _, c := range cats.Categories {
		id := rawID(c.ID)
		if !idPattern.MatchString(id) {
			continue
		}
		pc.Pipelines = append(pc.Pipelines, choice{ID: id, Name: c.Name})
		if id != "0" && len(more) < maxPipelines {
			more = append(more, BatchCommand{Name: "stages_" + id, Method: "crm.status.list", Params: stageFilter("DEAL_STAGE_" + id)})
		}
	}
	// The default pipeline comes first, as in Bitrix24's own lists.
	slices.SortStableFunc(pc.Pipelines, func(a, b choice) int {
		return boolRank(a.ID != "0") - boolRank(b.ID != "0")
	})
	if err := decodeStages(res, "stages_0", "0", &pc.Stages); err != nil {
		s.log.Warn("bitrix24 app page: stages", "integration_id", in.ID, "err", err)
		return pc
	}
	if len(more) > 0 {
		res2, err := s.client.Batch(ctx, in.ID, more, false)
		if err != nil {
			s.log.Warn("bitrix24 app page: pipeline stages", "integration_id", in.ID, "err", err)
			return pc
		}
		for _, c := range more {
			if err := decodeStages(res2, c.Name, strings.TrimPrefix(c.Name, "stages_"), &pc.Stages); err != nil {
				s.log.Warn("bitrix24 app page: pipeline stages", "integration_id", in.ID, "err", err)
				return pc
			}
		}
	}
	pc.StagesOK = true
	return pc
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func stageFilter(entityID string) map[string]any {
	return map[string]any{"filter": map[string]any{"ENTITY_ID": entityID}, "order": map[string]any{"SORT": "ASC"}}
}

// decodeStages appends a crm.status.list result's rows to out, each with
// group as its pipeline.
func decodeStages(res *BatchResult, name, group string, out *[]choice) error {
	var rows []struct {
		StatusID string `json:"STATUS_ID"`
		Name     string `json:"NAME"`
	}
	if err := res.Decode(name, &rows); err != nil {
		return err
	}
	for _, r := range rows {
		*out = append(*out, choice{ID: r.StatusID, Name: r.Name, Group: group})
	}
	return nil
}

// rawID reads an id Bitrix24 sends as a number or as a string.
func rawID(raw json.RawMessage) string {
	s := strings.Trim(string(raw), `"`)
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return ""
	}
	return s
}

// checkChoice refuses a binding whose line, pipeline or stage the portal
// does not offer (where the portal told us what it offers): a stage of
// another pipeline would otherwise create deals Bitrix24 refuses or files
// in the wrong pipeline.
func (pc *portalChoices) checkChoice(req BindRequest) error {
	has := func(list []choice, id, group string) bool {
		return slices.ContainsFunc(list, func(c choice) bool { return c.ID == id && c.Group == group })
	}
	switch req.Mode {
	case ModeOpenLines:
		if pc.LinesOK && req.LineID != "" && !has(pc.Lines, req.LineID, "") {
			return fault.New(fault.Invalid, "line_unknown", "the portal has no such Open Line")
		}
	case ModeCRM:
		switch req.Entity {
		case "deal":
			if !pc.StagesOK {
				return nil
			}
			cat := req.CategoryID
			if cat == "" {
				cat = "0"
			}
			if !has(pc.Pipelines, cat, "") {
				return fault.New(fault.Invalid, "category_unknown", "the portal has no such pipeline")
			}
			if req.StageID != "" && !has(pc.Stages, req.StageID, cat) {
				return fault.New(fault.Invalid, "stage_unknown", "the stage does not belong to the pipeline")
			}
		case "lead":
			if pc.StatusOK && req.StageID != "" && !has(pc.Statuses, req.StageID, "") {
				return fault.New(fault.Invalid, "stage_unknown", "no such lead status")
			}
		}
	}
	return nil
}
