package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/stages/notify"
)

// newNotifyCommand is the notify stage: the exit handler (and the running
// hook) of a run's Workflow. It always exits 0 once it has run: a
// notification that cannot be delivered must not fail the run, and Argo
// fails a Workflow whose exit handler fails. What it delivered goes to its
// output, which the controller turns into Events and a metric.
func newNotifyCommand() *cobra.Command {
	var run notify.Run
	var targetsJSON, secretFile, outputsDir, workflowUID string
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Send a run's notifications to its webhook, Slack and dead man's switch targets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			deliveries := sendNotifications(cmd.Context(), run, targetsJSON, secretFile, workflowUID)
			for _, d := range deliveries {
				if d.Delivered {
					fmt.Fprintf(cmd.OutOrStdout(), "notify: %s (%s) %s: delivered in %d attempt(s)\n", d.Target, d.Type, d.Event, d.Attempts)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "notify: %s (%s) %s: NOT delivered after %d attempt(s): %s\n", d.Target, d.Type, d.Event, d.Attempts, d.Error)
				}
			}
			report, _ := json.Marshal(deliveries) // plain strings and numbers
			if err := writeOutputs(outputsDir, map[string]string{compiler.OutputNotifications: string(report)}); err != nil {
				// Still no failure: the deliveries were made, only the report is lost.
				fmt.Fprintf(cmd.ErrOrStderr(), "notify: writing the report: %v\n", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&run.Event, "event", "", "Started, or the Workflow's status (Succeeded, Failed, Error) for the exit handler")
	f.StringVar(&targetsJSON, "targets", "[]", "the targets as JSON: [{name, type, on}]")
	f.StringVar(&secretFile, "secret-file", "", "file with the targets' URLs and signing keys (JSON by target name), mounted from the run's notify Secret")
	f.StringVar(&run.Kind, "kind", "", "kind of the resource: Backup or Restore")
	f.StringVar(&run.Namespace, "namespace", "", "namespace of the resource")
	f.StringVar(&run.Name, "name", "", "name of the resource")
	f.StringVar(&run.Workflow, "workflow", "", "name of the Workflow")
	f.StringVar(&workflowUID, "workflow-uid", "", "UID of the Workflow, which names the delivery")
	f.StringVar(&run.Phase, "phase", "", "the Workflow's status")
	f.StringVar(&run.Failures, "failures", "", "Argo's {{workflow.failures}}")
	f.StringVar(&run.Duration, "duration", "", "Argo's {{workflow.duration}}, in seconds")
	f.StringVar(&run.StartedAt, "started-at", "", "when the Workflow was created")
	f.StringVar(&run.Key, "key", "", "key of the object written or restored")
	f.StringVar(&run.Size, "size", "", "its size in bytes")
	f.StringVar(&run.Checksum, "checksum", "", "its checksum")
	f.StringSliceVar(&run.Steps, "steps", nil, "the run's steps, to find the failed one")
	f.StringVar(&outputsDir, "outputs-dir", "", "directory for the output parameters (notifications)")
	return cmd
}

// sendNotifications sends a run's notifications; any problem with the
// configuration is a delivery that failed, never an error.
func sendNotifications(ctx context.Context, run notify.Run, targetsJSON, secretFile, workflowUID string) []notify.Delivery {
	if run.Event != notify.EventStarted && run.Event != notify.EventSucceeded {
		run.Event = notify.EventFailed // Failed, Error
	}
	var targets []notify.Target
	if err := json.Unmarshal([]byte(targetsJSON), &targets); err != nil {
		return []notify.Delivery{{Target: "*", Event: run.Event, Error: "reading --targets: " + err.Error(), Time: time.Now().UTC().Format(time.RFC3339)}}
	}
	secrets := notify.Secrets{}
	if data, err := os.ReadFile(secretFile); err != nil || json.Unmarshal(data, &secrets) != nil {
		// Every target is reported as not delivered: its secret is missing.
		secrets = notify.Secrets{}
	}
	ctx, cancel := context.WithTimeout(ctx, notify.Budget+notify.RequestTimeout)
	defer cancel()
	s := &notify.Sender{Delivery: workflowUID}
	return s.Send(ctx, targets, secrets, notify.PayloadOf(run, time.Now()))
}
