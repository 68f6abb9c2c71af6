// A small client-go controller for the e2e tests: shared informers on the ConfigMaps and
// Secrets of one namespace (with the WatchListClient feature when KUBE_FEATURE_WatchListClient
// is true), printing every event it sees as one JSON line on stdout:
//
//	{"event":"add","kind":"Secret","name":"s1","rv":"123","initial":true,"data":{"k":"v"}}
//	{"event":"synced"}              both informers have synced their initial list
//	{"event":"request","detail":"GET /api/v1/...?watch=true&sendInitialEvents=true -> 200"}
//
// Secret values are printed decoded, so that a test sees what the controller would use.
// client-go's own logging (klog: watch errors, reconnects) goes to stderr.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

type line struct {
	Event   string            `json:"event"`
	Kind    string            `json:"kind,omitempty"`
	Name    string            `json:"name,omitempty"`
	RV      string            `json:"rv,omitempty"`
	Initial bool              `json:"initial,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
	Detail  string            `json:"detail,omitempty"`
}

var (
	outMu sync.Mutex
	enc   = json.NewEncoder(os.Stdout)
)

func emit(l line) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = enc.Encode(l)
}

func describe(obj interface{}) (kind, name, rv string, data map[string]string) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return "ConfigMap", o.Name, o.ResourceVersion, o.Data
	case *corev1.Secret:
		d := map[string]string{}
		for k, v := range o.Data {
			d[k] = string(v)
		}
		return "Secret", o.Name, o.ResourceVersion, d
	}
	return fmt.Sprintf("%T", obj), "", "", nil
}

// requests names every request the informers send and how it was answered.
type requests struct{ next http.RoundTripper }

func (l requests) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := l.next.RoundTrip(r)
	d := r.Method + " " + r.URL.RequestURI()
	if err != nil {
		emit(line{Event: "request", Detail: d + " -> " + err.Error()})
	} else {
		emit(line{Event: "request", Detail: fmt.Sprintf("%s -> %d", d, res.StatusCode)})
	}
	return res, err
}

func handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj interface{}, initial bool) {
			k, n, rv, d := describe(obj)
			emit(line{Event: "add", Kind: k, Name: n, RV: rv, Initial: initial, Data: d})
		},
		UpdateFunc: func(_, obj interface{}) {
			k, n, rv, d := describe(obj)
			emit(line{Event: "update", Kind: k, Name: n, RV: rv, Data: d})
		},
		DeleteFunc: func(obj interface{}) {
			k, n, rv, _ := describe(obj)
			emit(line{Event: "delete", Kind: k, Name: n, RV: rv})
		},
	}
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	namespace := flag.String("namespace", "default", "namespace to watch")
	resync := flag.Duration("resync", 0, "informer resync period (0: none)")
	klog.InitFlags(nil)
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeconfig:", err)
		os.Exit(2)
	}
	cfg.UserAgent = "gatehouse-e2e-controller"
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return requests{rt} })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(2)
	}
	emit(line{Event: "start", Detail: fmt.Sprintf("WatchListClient=%v",
		clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient))})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	factory := informers.NewSharedInformerFactoryWithOptions(client, *resync, informers.WithNamespace(*namespace))
	cms := factory.Core().V1().ConfigMaps().Informer()
	secrets := factory.Core().V1().Secrets().Informer()
	if _, err := cms.AddEventHandler(handler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := secrets.AddEventHandler(handler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, inf := range []cache.SharedIndexInformer{cms, secrets} {
		_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			emit(line{Event: "watch-error", Detail: err.Error()})
		})
	}
	factory.Start(ctx.Done())
	synced := factory.WaitForCacheSync(ctx.Done())
	for typ, ok := range synced {
		if !ok {
			fmt.Fprintf(os.Stderr, "%v did not sync\n", typ)
			os.Exit(1)
		}
	}
	emit(line{Event: "synced"})
	<-ctx.Done()
	factory.Shutdown()
	emit(line{Event: "stopped", Detail: time.Now().UTC().Format(time.RFC3339)})
}
