package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2/textlogger"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Log formats of --log-format.
const (
	logText = "text" // klog's text format, the default
	logJSON = "json" // one JSON object per line, through controller-runtime's zap
)

// newLogger builds the process logger for --log-format. The text logger
// honours -v and -vmodule; the JSON logger takes -v as its level (logr
// V(n) is zap level -n) and ignores -vmodule.
func newLogger(format string, text *textlogger.Config, w io.Writer) (logr.Logger, error) {
	switch format {
	case logText:
		return textlogger.NewLogger(text), nil
	case logJSON:
		v, err := strconv.Atoi(text.Verbosity().String())
		if err != nil {
			return logr.Logger{}, fmt.Errorf("-v %q: %w", text.Verbosity().String(), err)
		}
		opts := zap.Options{
			Level:       zapcore.Level(-v),
			DestWriter:  w,
			TimeEncoder: zapcore.RFC3339NanoTimeEncoder,
		}
		return zap.New(zap.UseFlagOptions(&opts)), nil
	default:
		return logr.Logger{}, fmt.Errorf("--log-format %q: want %s or %s", format, logText, logJSON)
	}
}
