#!/usr/bin/env perl
# Run a command, or an array of jobs, on a Slurm cluster, with run.pl's interface, log format and
# exit codes, so recipes switch back ends by changing $cmd only (cmd.sh).
#
#   slurm.pl [options] [JOB=1:N] <log-file> <command...>
#
# JOB substitution, command quoting, the log header/footer and the failure messages are run.pl's
# (see utils/run.pl). Each job gets a script <log-dir>/q/<name>.<id>.sh; they are submitted as one
# array job (`sbatch --parsable --wait --array=<ids>[%K]`), which blocks until every task has ended.
# Each task writes its exit status to <log-dir>/q/done.<name>.<id>; a task with no status after the
# array ended (killed for time or memory, node failure) counts as failed, and the message points at
# `sacct -j <jobid>` and the task's Slurm output <log-dir>/q/<name>.<id>.out.
#
# Options (each takes a value):
#   --config FILE       scheduler config (below); its lines extend and override the built-in ones
#   --max-jobs-run K    at most K tasks at once (the array's %K throttle)
#   --pick WHICH        all (default) | failed | incomplete, as in run.pl
#   --sync-wait S       seconds to wait for a missing status file after the array ends (shared file
#                       systems can lag; default 10)
#   --mem M, --num-threads N, --gpu N, --time T, --num-nodes M, and any option the config defines: mapped
#                       to sbatch flags by the config. An option the config does not define is an error.
#                       --gpu is per node; --num-nodes M > 1 allocates M nodes to each job (multi-node training:
#                       utils/launch_train.sh then starts one torchrun per node with srun).
#
# Config grammar (Kaldi's slurm.conf); names use underscores, `$0` is the option's value:
#   command sbatch --partition=cpu        # the submit command and fixed flags
#   option gpu=* -p gpu --gres=gpu:$0     # flags for any value ...
#   option gpu=0                          # ... or for one exact value (wins over *)
#   default time=4:00:00                  # value used when the option is not given
# Built in: command sbatch; mem=* --mem $0; num_threads=* --cpus-per-task $0; gpu=* --gres=gpu:$0;
# gpu=0 (no flag); time=* --time $0; num_nodes=* --nodes=$0; num_nodes=1 (no flag).
use strict;
use warnings;
use Cwd qw(getcwd);
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use POSIX ();

my $me = "slurm.pl";

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

my @command = ("sbatch");
my %opt_flags = ("mem=*" => "--mem \$0", "num_threads=*" => "--cpus-per-task \$0",
                 "gpu=*" => "--gres=gpu:\$0", "gpu=0" => "", "time=*" => "--time \$0",
                 "num_nodes=*" => "--nodes=\$0", "num_nodes=1" => "");
my %defaults;

sub read_config {
    my ($file) = @_;
    open(my $fh, "<", $file) or usage_exit("--config: cannot read '$file': $!");
    while (my $line = <$fh>) {
        $line =~ s/#.*//;
        $line =~ s/^\s+|\s+$//g;
        next if $line eq "";
        if ($line =~ m/^command\s+(.+)$/) { @command = split(" ", $1); }
        elsif ($line =~ m/^option\s+(\w+)=(\S+)\s*(.*)$/) { $opt_flags{"$1=$2"} = $3; }
        elsif ($line =~ m/^default\s+(\w+)=(\S+)$/) { $defaults{$1} = $2; }
        else { usage_exit("$file:$.: cannot parse '$line'; expected 'command ...', 'option name=value flags' or 'default name=value'"); }
    }
    close($fh);
}

my $max_jobs_run = 0;
my $pick = "all";
my $sync_wait = 10;
my %given;  # option name (underscores) -> value
while (@ARGV && $ARGV[0] =~ m/^--?[A-Za-z]/) {
    my $switch = shift @ARGV;
    usage_exit() if $switch eq "--help" || $switch eq "-h";
    my $value;
    if ($switch =~ m/^(--[^=]+)=(.*)$/) { ($switch, $value) = ($1, $2); }
    else {
        usage_exit("option '$switch' needs a value") unless @ARGV;
        $value = shift @ARGV;
    }
    if ($switch eq "--config") { read_config($value); }
    elsif ($switch eq "--max-jobs-run") {
        usage_exit("--max-jobs-run takes a positive integer, not '$value'") unless $value =~ m/^[1-9]\d*$/;
        $max_jobs_run = $value;
    } elsif ($switch eq "--pick") {
        usage_exit("--pick takes all, failed or incomplete, not '$value'") unless $value =~ m/^(all|failed|incomplete)$/;
        $pick = $value;
    } elsif ($switch eq "--sync-wait") {
        usage_exit("--sync-wait takes seconds, not '$value'") unless $value =~ m/^\d+$/;
        $sync_wait = $value;
    } else {
        (my $name = $switch) =~ s/^--//;
        $name =~ s/-/_/g;
        $given{$name} = $value;  # checked against the config once it is fully read
    }
}

my @flags;
my %values = (%defaults, %given);
foreach my $name (sort keys %values) {
    my $v = $values{$name};
    my $f = exists $opt_flags{"$name=$v"} ? $opt_flags{"$name=$v"} : $opt_flags{"$name=*"};
    if (!defined $f) {
        (my $o = $name) =~ s/_/-/g;
        usage_exit("unknown option --$o (value '$v'): add 'option $name=* <sbatch flags with \$0>' to the --config file");
    }
    $f =~ s/\$0/$v/g;
    push @flags, split(" ", $f);
}
my $num_threads = $values{num_threads} // 1;

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
if (defined $jobname && dirname($logfile) =~ m/\Q$jobname\E/) {
    usage_exit("$jobname may appear in the log file's name but not in its directory ('$logfile')");
}

my $cmd = "";  # Kaldi's quoting, as run.pl
foreach my $x (@ARGV) {
    if ($x =~ m/^\S+$/) { $cmd .= $x . " "; }
    elsif ($x =~ m/"/) { $cmd .= "'$x' "; }
    else { $cmd .= "\"$x\" "; }
}
$cmd =~ s/ $//;

sub subst {
    my ($s, $id) = @_;
    return $s unless defined $jobname;
    $s =~ s/\Q$jobname\E/$id/g;
    return $s;
}

sub shq { my ($s) = @_; $s =~ s/'/'\\''/g; return "'$s'"; }

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

my $logdir = dirname($logfile);
my $qdir = "$logdir/q";
my $base = basename($logfile);
$base =~ s/\.?\Q$jobname\E// if defined $jobname;
$base =~ s/\.log$//;
eval { make_path($qdir) unless -d $qdir; 1 } or do { print STDERR "$me: cannot create $qdir: $@"; exit 1; };
my $cwd = getcwd();

# One script per task: it writes run.pl's header and footer around the command, then its status file.
foreach my $id (@jobs) {
    my $log = subst($logfile, $id);
    my $jcmd = subst($cmd, $id);
    my $done = "$qdir/done.$base.$id";
    unlink($done, $log);
    my $script = "$qdir/$base.$id.sh";
    my $delim = "AUDIORL_SLURM_EOF";
    $delim .= "_X" while $jcmd =~ m/^\Q$delim\E$/m;
    open(my $fh, ">", $script) or do { print STDERR "$me: cannot write $script: $!\n"; exit 1; };
    print $fh "#!/usr/bin/env bash\n# Written by $me for job $id of $logfile\n";
    print $fh "cd " . shq($cwd) . " || exit 1\n";
    print $fh "log=" . shq($log) . "\n";
    print $fh "{ cat <<'$delim'\n# $jcmd\n$delim\n";
    print $fh "echo \"# Started at \$(date)\"\n";
    print $fh "echo \"# $me: Slurm job \${SLURM_JOB_ID:-?} task \${SLURM_ARRAY_TASK_ID:-?} on \$(hostname)\"; } > \"\$log\"\n";
    print $fh "start=\$(date +%s)\n";
    print $fh "( $jcmd\n) < /dev/null >> \"\$log\" 2>&1\n";
    print $fh "ret=\$?\nend=\$(date +%s)\n";
    print $fh "echo \"# Accounting: time=\$((end - start)) threads=$num_threads\" >> \"\$log\"\n";
    print $fh "echo \"# Ended (code \$ret) at \$(date), elapsed time \$((end - start)) seconds\" >> \"\$log\"\n";
    print $fh "echo \$ret > " . shq($done) . "\nexit \$ret\n";
    close($fh);
}
my $array_script = "$qdir/$base.array.sh";
open(my $afh, ">", $array_script) or do { print STDERR "$me: cannot write $array_script: $!\n"; exit 1; };
print $afh "#!/usr/bin/env bash\nexec bash " . shq("$qdir/$base") . ".\${SLURM_ARRAY_TASK_ID}.sh\n";
close($afh);

# Compact id list for --array: 1-4 or 1,3,5-7.
my @ranges;
foreach my $id (@jobs) {
    if (@ranges && $ranges[-1][1] == $id - 1) { $ranges[-1][1] = $id; } else { push @ranges, [$id, $id]; }
}
my $array = join(",", map { $_->[0] == $_->[1] ? $_->[0] : "$_->[0]-$_->[1]" } @ranges);
$array .= "%$max_jobs_run" if $max_jobs_run > 0;

my @submit = (@command, "--parsable", "--wait", "--job-name=$base", "--array=$array",
              "--output=$qdir/$base.%a.out", @flags, $array_script);
my $slurm_id;
$SIG{INT} = $SIG{TERM} = sub {  # don't leave the array running when the recipe is interrupted
    system("scancel", $slurm_id) if defined $slurm_id;
    print STDERR "$me: interrupted" . (defined $slurm_id ? "; cancelled Slurm job $slurm_id" : "") . "\n";
    exit 1;
};
my $errfile = "$qdir/$base.sbatch.err";
my $pid = open(my $out, "-|") // die "$me: fork failed: $!";
if ($pid == 0) {
    open(STDERR, ">", $errfile) or die "$me: cannot write $errfile: $!";
    exec(@submit) or do { print STDERR "cannot run $submit[0]: $!\n"; POSIX::_exit(127); };
}
while (my $line = <$out>) {
    $slurm_id = $1 if !defined $slurm_id && $line =~ m/^(\d+)/;
}
close($out);
my $sbatch_status = $? >> 8;
if (!defined $slurm_id) {
    my $err = "";
    if (open(my $e, "<", $errfile)) { local $/; $err = <$e>; close($e); }
    print STDERR "$me: submission failed (exit $sbatch_status): " . join(" ", @submit) . "\n$err";
    print STDERR "$me: check the partition and flags in your --config file\n";
    exit 1;
}

my (%code, @no_status);
my $deadline = time() + $sync_wait;
foreach my $id (@jobs) {
    my $done = "$qdir/done.$base.$id";
    sleep(1) while !-e $done && time() < $deadline;
    if (open(my $fh, "<", $done)) {
        my $c = <$fh> // "";
        close($fh);
        chomp $c;
        $code{$id} = $c =~ m/^\d+$/ ? $c : 1;
    } else {
        $code{$id} = -1;
        push @no_status, $id;
    }
}

my @failed = grep { $code{$_} != 0 } @jobs;
exit 0 unless @failed;
if (@no_status) {
    print STDERR "$me: " . scalar(@no_status) . " task(s) of Slurm job $slurm_id ended without an exit status "
      . "(killed for time/memory, or a node failure?): see `sacct -j $slurm_id` and "
      . join(" ", map { "$qdir/$base.$_.out" } @no_status[0 .. ($#no_status > 4 ? 4 : $#no_status)]) . "\n";
}
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
