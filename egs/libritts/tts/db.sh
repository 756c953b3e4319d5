# Where the corpus lives: the directory the official archives are downloaded to and extracted in
# (local/download.sh; it then holds LibriTTS/<subset>). A relative path is relative to the recipe dir (wav.scp
# paths then stay relative too); set LIBRITTS in the environment to use a shared copy, e.g.
#   export LIBRITTS=/data/corpora      # holding /data/corpora/LibriTTS/train-clean-100 ...
LIBRITTS=${LIBRITTS:-downloads}
