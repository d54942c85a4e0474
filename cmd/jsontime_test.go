package cmd

import (
	"encoding/json"
	"time"
)

// UnmarshalJSON reads what MarshalJSON writes (only the tests read documents).
func (t *jsonTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = jsonTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(timeLayout, s)
	*t = jsonTime(v)
	return err
}
