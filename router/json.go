package router

import "encoding/json"

// JSONInt reads a number of an unstructured object, whichever Go type
// decoding gave it (int64 from the API server's JSON, float64 from
// encoding/json, int from code); 0 for anything else.
func JSONInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}
