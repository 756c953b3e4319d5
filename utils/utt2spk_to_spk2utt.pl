#!/usr/bin/env perl
# Invert utt2spk ("<utt> <spk>" lines) into spk2utt ("<spk> <utt1> <utt2> ..." lines), as Kaldi's
# utils/utt2spk_to_spk2utt.pl: speakers in order of first appearance, utterances in input order (so a
# utt2spk sorted by utterance and by speaker gives a sorted spk2utt).
#   utils/utt2spk_to_spk2utt.pl [utt2spk ...] > spk2utt      (reads stdin without file arguments)
# Exit status: 0 success, 1 bad input (message names the file and line), 2 usage error.
use strict;
use warnings;

my $usage = "Usage: $0 [<utt2spk> ...] > <spk2utt>\n"
  . "Inverts utt2spk (\"<utt> <spk>\" lines) into spk2utt; reads stdin if no file is given.\n";
if (@ARGV && ($ARGV[0] eq '--help' || $ARGV[0] eq '-h')) { print $usage; exit 0; }
shift @ARGV if @ARGV && $ARGV[0] eq '--';
for my $a (@ARGV) {
  if ($a =~ /^--?./) { print STDERR "$0: unknown option '$a'\n$usage"; exit 2; }
  if ($a ne '-' && ! -r $a) { print STDERR "$0: $a: no such file or not readable\n"; exit 1; }
}

my (@spks, %utts);
while (my $line = <>) {
  my @f = split(' ', $line);
  if (@f != 2) {
    chomp $line;
    print STDERR "$0: $ARGV:$.: expected 2 fields '<utt> <spk>', got " . scalar(@f) . " ('$line'); fix the line\n";
    exit 1;
  }
  my ($u, $s) = @f;
  push @spks, $s unless exists $utts{$s};
  push @{$utts{$s}}, $u;
} continue {
  close ARGV if eof;  # restart line numbers for each file
}
print "$_ @{$utts{$_}}\n" for @spks;
