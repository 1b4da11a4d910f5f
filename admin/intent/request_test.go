package intent

import (
	"errors"
	"strings"
	"testing"

	"github.com/fulcrum-ml/fulcrum/api/v1alpha1"
)

func TestDecode(t *testing.T) {
	tests := map[string]struct {
		action     v1alpha1.IntentAction
		body       string
		wantStatus int // 0: accepted
		wantField  string
		wantDetail string
	}{
		"start ok":               {action: v1alpha1.IntentStart, body: `{"candidate":"v2","reason":"new model"}`},
		"start missing":          {action: v1alpha1.IntentStart, body: `{}`, wantStatus: 422, wantField: "candidate", wantDetail: "required"},
		"start empty body":       {action: v1alpha1.IntentStart, body: ``, wantStatus: 422, wantField: "candidate"},
		"start bad name":         {action: v1alpha1.IntentStart, body: `{"candidate":"V2!"}`, wantStatus: 422, wantField: "candidate"},
		"start number":           {action: v1alpha1.IntentStart, body: `{"candidate":2}`, wantStatus: 400, wantField: "candidate", wantDetail: "must be a string"},
		"start with weights":     {action: v1alpha1.IntentStart, body: `{"candidate":"v2","weights":[]}`, wantStatus: 422, wantField: "weights"},
		"promote empty":          {action: v1alpha1.IntentPromote, body: ``},
		"promote reason":         {action: v1alpha1.IntentPromote, body: `{"reason":"looks good"}`},
		"promote candidate":      {action: v1alpha1.IntentPromote, body: `{"candidate":"v2"}`, wantStatus: 422, wantField: "candidate"},
		"unknown field":          {action: v1alpha1.IntentRollback, body: `{"reson":"typo"}`, wantStatus: 400, wantField: "reson", wantDetail: "unknown field"},
		"malformed":              {action: v1alpha1.IntentRollback, body: `{"reason":`, wantStatus: 400, wantDetail: "ends early"},
		"syntax":                 {action: v1alpha1.IntentRollback, body: `{reason:1}`, wantStatus: 400, wantDetail: "malformed JSON"},
		"trailing":               {action: v1alpha1.IntentRollback, body: `{} {}`, wantStatus: 400, wantDetail: "trailing"},
		"array":                  {action: v1alpha1.IntentRollback, body: `[]`, wantStatus: 400},
		"long reason":            {action: v1alpha1.IntentPause, body: `{"reason":"` + strings.Repeat("x", 1025) + `"}`, wantStatus: 422, wantField: "reason"},
		"split ok":               {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":70},{"subset":"v2","weight":30}]}`},
		"split three":            {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"a","weight":50},{"subset":"b","weight":25},{"subset":"c","weight":25}]}`},
		"split fractional":       {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":70.5},{"subset":"v2","weight":29.5}]}`, wantStatus: 422, wantField: "weights[0].weight", wantDetail: "fractional"},
		"split negative":         {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":110},{"subset":"v2","weight":-10}]}`, wantStatus: 422, wantField: "weights[0].weight", wantDetail: "over 100"},
		"split negative only":    {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":-10},{"subset":"v2","weight":110}]}`, wantStatus: 422, wantField: "weights[0].weight", wantDetail: "negative"},
		"split exponent":         {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":7e1},{"subset":"v2","weight":30}]}`, wantStatus: 422, wantField: "weights[0].weight", wantDetail: "plain integer"},
		"split string":           {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":"70"},{"subset":"v2","weight":30}]}`, wantStatus: 422, wantField: "weights[0].weight", wantDetail: "not a number"},
		"split sum":              {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":70},{"subset":"v2","weight":20}]}`, wantStatus: 422, wantField: "weights", wantDetail: "sum to 90"},
		"split one":              {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":100}]}`, wantStatus: 422, wantField: "weights"},
		"split dup":              {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":50},{"subset":"v1","weight":50}]}`, wantStatus: 422, wantField: "weights[1].subset"},
		"split missing weight":   {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1"},{"subset":"v2","weight":100}]}`, wantStatus: 422, wantField: "weights[0].weight"},
		"split unknown subfield": {action: v1alpha1.IntentSplit, body: `{"weights":[{"subset":"v1","weight":50,"x":1},{"subset":"v2","weight":50}]}`, wantStatus: 400, wantField: "x"},
		"approve empty":          {action: v1alpha1.IntentApprove, body: ``},
		"approve gate":           {action: v1alpha1.IntentApprove, body: `{"gate":"sign-off","reason":"eval is good"}`},
		"approve bad gate":       {action: v1alpha1.IntentApprove, body: `{"gate":"Sign Off"}`, wantStatus: 422, wantField: "gate"},
		"approve weights":        {action: v1alpha1.IntentApprove, body: `{"weights":[]}`, wantStatus: 422, wantField: "weights"},
		"gate on promote":        {action: v1alpha1.IntentPromote, body: `{"gate":"sign-off"}`, wantStatus: 422, wantField: "gate", wantDetail: "only approve names one"},
		"split candidate":        {action: v1alpha1.IntentSplit, body: `{"candidate":"v2","weights":[{"subset":"v1","weight":50},{"subset":"v2","weight":50}]}`, wantStatus: 422, wantField: "candidate"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := DecodeBytes(tc.action, []byte(tc.body))
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if req.Action != tc.action {
					t.Fatalf("action = %q", req.Action)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error with status %d, got %v", tc.wantStatus, err)
			}
			if e.Status != tc.wantStatus || e.Field != tc.wantField || !strings.Contains(e.Detail, tc.wantDetail) {
				t.Fatalf("got status %d field %q detail %q; want %d %q containing %q", e.Status, e.Field, e.Detail, tc.wantStatus, tc.wantField, tc.wantDetail)
			}
		})
	}
}

func TestDecodeSplitKeepsOrder(t *testing.T) {
	req, err := DecodeBytes(v1alpha1.IntentSplit, []byte(`{"weights":[{"subset":"v2","weight":30},{"subset":"v1","weight":70}],"reason":"A/B"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Weights) != 2 || req.Weights[0] != (v1alpha1.SubsetWeight{Subset: "v2", Weight: 30}) || req.Reason != "A/B" {
		t.Fatalf("got %+v", req)
	}
}
