package simulate

import "testing"

// TestVocabulary: the embedded data files decode with no unknown name, no
// empty list, a script for every queue a conversation can reach, and lines
// that are each the agent's or the customer's.
func TestVocabulary(t *testing.T) {
	v, err := loadVocabulary()
	if err != nil {
		t.Fatal(err)
	}
	if len(v.menuChoices) != len(flowWeights) || len(v.areaWeights) != len(v.Areas) {
		t.Fatalf("%d flows of menu choices for %d flows; %d weights for %d areas", len(v.menuChoices), len(flowWeights), len(v.areaWeights), len(v.Areas))
	}
	for _, queue := range []string{"Financeiro", "Cobrança", "Suporte", "Comercial", "Retenção", "Atendimento Geral"} {
		if len(v.scripts[queue]) == 0 || len(v.transfers[queue]) == 0 {
			t.Errorf("queue %s, which the flows hand off to, has %d scripts and %d transfers", queue, len(v.scripts[queue]), len(v.transfers[queue]))
		}
	}
}
