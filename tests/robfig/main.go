// Command robfig-next prints what the Kubernetes CronJob controller and API
// server make of a schedule, using robfig/cron v3 as they do. It reads
// lines of "SCHEDULE<TAB>TIME ZONE<TAB>START (RFC 3339)<TAB>COUNT" on stdin
// and writes one line for each: "rejected" when the API server would reject
// the schedule, or "runs" followed by COUNT run times in RFC 3339, each
// after the one before, starting after START.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron"
)

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	for scanner.Scan() {
		fmt.Println(evaluate(scanner.Text()))
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "error: failed to read stdin:", err)
		os.Exit(1)
	}
}

func evaluate(line string) string {
	fields := strings.Split(line, "\t")
	if len(fields) != 4 {
		return "invalid input line: " + line
	}
	schedule, zone := fields[0], fields[1]
	start, err := time.Parse(time.RFC3339, fields[2])
	if err != nil {
		return "invalid start: " + err.Error()
	}
	count, err := strconv.Atoi(fields[3])
	if err != nil {
		return "invalid count: " + err.Error()
	}

	// The API server's check for a new CronJob.
	if _, err := cron.ParseStandard(schedule); err != nil || strings.Contains(schedule, "TZ") {
		return "rejected"
	}

	// The controller prefixes the CronJob's time zone.
	parsed, err := cron.ParseStandard("TZ=" + zone + " " + schedule)
	if err != nil {
		return "invalid time zone: " + err.Error()
	}
	location, err := time.LoadLocation(zone)
	if err != nil {
		return "invalid time zone: " + err.Error()
	}

	runs := []string{"runs"}
	next := start
	for i := 0; i < count; i++ {
		next = parsed.Next(next)
		if next.IsZero() {
			break
		}
		runs = append(runs, next.In(location).Format(time.RFC3339))
	}
	return strings.Join(runs, " ")
}
