#!/usr/bin/env perl
# Run a command, or an array of jobs, on this machine, with Kaldi's run.pl interface and log format.
#
#   run.pl [options] [JOB=1:N] <log-file> <command...>
#
# JOB (any name: TASK=1:4 works too) is replaced by the job number everywhere in the log-file name and
# the command, as plain text substitution (Kaldi's behaviour: so avoid the name inside other words).
# Command words are joined Kaldi's way: a word without whitespace is passed as is (so `\|` gives a
# pipe), a word with whitespace is double-quoted, or single-quoted if it contains a double quote.
# Each job runs as `bash -c <command>` with stdout and stderr appended to its log, which opens with
#   # <command>
#   # Started at <date>
# and closes with
#   # Accounting: time=<seconds> threads=<n>
#   # Ended (code <exit status>) at <date>, elapsed time <seconds> seconds
# Exit status: 0 if every job succeeded; 1 if any failed ("run.pl: 2 / 4 failed, log is in x.*.log",
# then the failed logs); 2 for usage errors.
#
# Options (each takes a value):
#   --max-jobs-run K    run at most K jobs at once (default: the number of CPUs, as Kaldi)
#   --pick WHICH        all (default) | failed: only jobs whose log ends with a non-zero code |
#                       incomplete: jobs whose log does not end with code 0 (failed, killed, never run)
#   --num-threads N     only reported in the Accounting line (run.pl does not limit threads)
#   --gpu N             N > 0 adds a note to each log: run.pl does not allocate GPUs
#   --mem, --time, --config, and any other --option VALUE: accepted and ignored, so that recipes can
#                       pass the same options to run.pl and slurm.pl.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use POSIX qw(strftime);

my $me = "run.pl";

sub usage_exit {
    my ($msg) = @_;
    if (!defined $msg) {  # --help: the header comment of this file is the documentation (one copy)
        if (open(my $self, "<", $0)) {
            <$self>;  # shebang
            while (my $line = <$self>) { last unless $line =~ s/^# ?//; print STDOUT $line; }
            close($self);
        }
        exit 0;
    }
    print STDERR "$me: $msg\n";
    print STDERR "usage: $me [options] [JOB=1:N] <log-file> <command...>   ($me --help for the options)\n";
    exit 2;
}

my $max_jobs_run = -1;
my $pick = "all";
my $num_threads = 1;
my $gpu = 0;

while (@ARGV && $ARGV[0] =~ m/^--?[A-Za-z]/) {
    my $switch = shift @ARGV;
    usage_exit() if $switch eq "--help" || $switch eq "-h";
    my $value;
    if ($switch =~ m/^(--[^=]+)=(.*)$/) { ($switch, $value) = ($1, $2); }
    else {
        usage_exit("option '$switch' needs a value") unless @ARGV;
        $value = shift @ARGV;
    }
    if ($switch eq "--max-jobs-run") {
        usage_exit("--max-jobs-run takes a positive integer, not '$value'") unless $value =~ m/^[1-9]\d*$/;
        $max_jobs_run = $value;
    } elsif ($switch eq "--pick") {
        usage_exit("--pick takes all, failed or incomplete, not '$value'") unless $value =~ m/^(all|failed|incomplete)$/;
        $pick = $value;
    } elsif ($switch eq "--num-threads") {
        usage_exit("--num-threads takes a positive integer, not '$value'") unless $value =~ m/^[1-9]\d*$/;
        $num_threads = $value;
    } elsif ($switch eq "--gpu") {
        usage_exit("--gpu takes a non-negative integer, not '$value'") unless $value =~ m/^\d+$/;
        $gpu = $value;
    }
    # Anything else (--mem 4G, --time 1:00:00, --config conf/slurm.conf, ...) is for schedulers: ignored.
}

my ($jobname, $jobstart, $jobend) = (undef, 1, 1);
if (@ARGV && $ARGV[0] =~ m/^([A-Za-z_]\w*)=(\d+):(\d+)$/) {
    ($jobname, $jobstart, $jobend) = ($1, $2, $3);
    shift @ARGV;
    usage_exit("job range $jobname=$jobstart:$jobend is empty (start > end)") if $jobstart > $jobend;
} elsif (@ARGV && $ARGV[0] =~ m/^([A-Za-z_]\w*)=(\d+)$/) {
    ($jobname, $jobstart, $jobend) = ($1, $2, $2);
    shift @ARGV;
}
usage_exit("expected a log file and a command") if @ARGV < 2;
my $logfile = shift @ARGV;

if (defined $jobname && $jobend > $jobstart && $logfile !~ m/\Q$jobname\E/) {
    usage_exit("$jobend - $jobstart + 1 jobs would all write to one log file '$logfile'; put $jobname in its name");
}

# Kaldi's quoting of the command words (see the header).
my $cmd = "";
foreach my $x (@ARGV) {
    if ($x =~ m/^\S+$/) { $cmd .= $x . " "; }
    elsif ($x =~ m/"/) { $cmd .= "'$x' "; }
    else { $cmd .= "\"$x\" "; }
}
$cmd =~ s/ $//;

if ($max_jobs_run == -1) {  # Kaldi's default: one job per CPU
    $max_jobs_run = 0;
    if (open(my $ci, "<", "/proc/cpuinfo")) {
        while (<$ci>) { $max_jobs_run++ if m/^processor/; }
        close($ci);
    }
    $max_jobs_run = 8 if $max_jobs_run == 0;
}

sub subst {
    my ($s, $id) = @_;
    return $s unless defined $jobname;
    $s =~ s/\Q$jobname\E/$id/g;
    return $s;
}

sub now { return strftime("%a %b %e %H:%M:%S %Z %Y", localtime); }

# Exit code a finished log reports, or undef if it has no footer (missing, running, killed).
sub log_code {
    my ($log) = @_;
    open(my $fh, "<", $log) or return undef;
    my $code;
    while (<$fh>) { $code = $1 if m/^# Ended \(code (-?\d+)\)/; }
    close($fh);
    return $code;
}

my @jobs;
for (my $id = $jobstart; $id <= $jobend; $id++) {
    my $code = log_code(subst($logfile, $id));
    next if $pick eq "failed" && !(defined $code && $code != 0);
    next if $pick eq "incomplete" && defined $code && $code == 0;
    push @jobs, $id;
}
my $njobs_total = $jobend - $jobstart + 1;
if (!@jobs) {
    print STDERR "$me: --pick $pick: nothing to rerun among the $njobs_total job(s) of $logfile\n";
    exit 0;
}

# Run one job in this (forked) process; its exit status is the command's (128+N for signal N).
sub run_job {
    my ($id) = @_;
    my $log = subst($logfile, $id);
    my $jcmd = subst($cmd, $id);
    my $dir = dirname($log);
    eval { make_path($dir) unless -d $dir; 1 } or do { print STDERR "$me: cannot create $dir: $@"; exit 1; };
    open(my $fh, ">", $log) or do { print STDERR "$me: cannot write log $log: $!\n"; exit 1; };
    print $fh "# $jcmd\n# Started at " . now() . "\n";
    print $fh "# $me: --gpu $gpu requested, but run.pl does not allocate GPUs; CUDA_VISIBLE_DEVICES is left as it is\n"
      if $gpu > 0;
    close($fh);
    my $start = time();
    my $pid = fork();
    die "$me: fork failed: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDOUT, ">>", $log) or die "$me: cannot append to $log: $!";
        open(STDERR, ">&", \*STDOUT) or die "$me: cannot redirect stderr: $!";
        open(STDIN, "<", "/dev/null");
        exec("bash", "-c", $jcmd) or do { print STDERR "$me: cannot run bash: $!\n"; POSIX::_exit(127); };
    }
    waitpid($pid, 0);
    my $st = $?;
    my $ret = ($st & 127) ? 128 + ($st & 127) : ($st >> 8);
    my $elapsed = time() - $start;
    open($fh, ">>", $log) or exit($ret || 1);
    print $fh "# Accounting: time=$elapsed threads=$num_threads\n";
    print $fh "# Ended (code $ret) at " . now() . ", elapsed time $elapsed seconds\n";
    close($fh);
    exit($ret > 255 ? 255 : $ret);
}

my %running;  # pid -> job id
my %code;     # job id -> exit status
my @queue = @jobs;
while (@queue || %running) {
    while (@queue && scalar(keys %running) < $max_jobs_run) {
        my $id = shift @queue;
        my $pid = fork();
        die "$me: fork failed: $!" unless defined $pid;
        if ($pid == 0) { run_job($id); }
        $running{$pid} = $id;
    }
    my $pid = waitpid(-1, 0);
    last if $pid == -1;
    next unless exists $running{$pid};
    my $id = delete $running{$pid};
    $code{$id} = ($? & 127) ? 128 + ($? & 127) : ($? >> 8);
}

my @failed = grep { $code{$_} != 0 } @jobs;
exit 0 unless @failed;
if ($njobs_total == 1) {
    print STDERR "$me: job failed, log is in " . subst($logfile, $jobstart) . "\n";
} else {
    my $pattern = $logfile;
    $pattern =~ s/\Q$jobname\E/*/g;
    print STDERR "$me: " . scalar(@failed) . " / " . scalar(@jobs) . " failed, log is in $pattern\n";
    my @show = @failed > 10 ? @failed[0 .. 9] : @failed;
    print STDERR "$me: failed: " . join(" ", map { subst($logfile, $_) } @show) . (@failed > 10 ? " ..." : "") . "\n";
}
exit 1;
