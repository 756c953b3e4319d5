# Where the corpus lives: the directory the official archives are downloaded to and extracted in
# (local/download.sh; it then holds LibriSpeech/<subset>). A relative path is relative to the recipe dir
# (wav.scp paths then stay relative too); set LIBRISPEECH in the environment to use a shared copy, e.g.
#   export LIBRISPEECH=/data/corpora      # holding /data/corpora/LibriSpeech/train-clean-100 ...
LIBRISPEECH=${LIBRISPEECH:-downloads}
